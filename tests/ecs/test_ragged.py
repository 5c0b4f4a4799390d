"""RaggedArray: offsets + values lists, checked against plain Python lists."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from socius.ecs import RaggedArray

rows_st = st.lists(st.lists(st.integers(-1000, 1000), max_size=6), max_size=12)


@settings(max_examples=60, deadline=None)
@given(rows=rows_st)
def test_from_lists_round_trips_and_describes_itself(rows):
    r = RaggedArray.from_lists(rows, np.int32)
    assert r.to_lists() == rows
    assert len(r) == len(rows)
    assert r.dtype == np.int32 and r.offsets.dtype == np.int64
    assert r.offsets[0] == 0 and r.offsets[-1] == r.values.shape[0] == sum(map(len, rows))
    assert r.lengths.tolist() == [len(x) for x in rows]
    assert r.row_ids().tolist() == [i for i, x in enumerate(rows) for _ in x]
    for i, x in enumerate(rows):
        assert r.row(i).tolist() == x
    assert r.equals(RaggedArray.from_lists(rows, np.int32))
    assert r.equals(r.copy()) and r.copy().values is not r.values


@settings(max_examples=60, deadline=None)
@given(data=st.data(), rows=rows_st.filter(len))
def test_take_matches_list_indexing(data, rows):
    idx = data.draw(st.lists(st.integers(0, len(rows) - 1), max_size=15))
    r = RaggedArray.from_lists(rows, np.int64).take(np.array(idx, dtype=np.int64))
    assert r.to_lists() == [rows[i] for i in idx]
    assert r.offsets[-1] == r.values.shape[0]  # compact: no values outside the rows


@settings(max_examples=60, deadline=None)
@given(data=st.data(), rows=rows_st.filter(len))
def test_set_rows_matches_list_replacement(data, rows):
    targets = data.draw(st.lists(st.integers(0, len(rows) - 1), unique=True, max_size=len(rows)))
    new = data.draw(st.lists(st.lists(st.integers(-5, 5), max_size=4), min_size=len(targets), max_size=len(targets)))
    base = RaggedArray.from_lists(rows, np.int64)
    out = base.set_rows(np.array(targets, dtype=np.int64), RaggedArray.from_lists(new, np.int64))
    expect = [list(x) for x in rows]
    for t, v in zip(targets, new):
        expect[t] = v
    assert out.to_lists() == expect
    assert out.offsets[-1] == out.values.shape[0]
    assert base.to_lists() == rows  # set_rows returns a new array; the input is untouched


@settings(max_examples=40, deadline=None)
@given(parts=st.lists(rows_st, min_size=1, max_size=4))
def test_concat_matches_list_concatenation(parts):
    r = RaggedArray.concat([RaggedArray.from_lists(p, np.int64) for p in parts])
    assert r.to_lists() == [x for p in parts for x in p]


def test_set_rows_casts_to_the_stored_dtype_and_checks_counts():
    base = RaggedArray.from_lists([[1], [2]], np.int64)
    out = base.set_rows(np.array([1]), RaggedArray.from_lists([[7, 8]], np.int32))
    assert out.dtype == np.int64 and out.to_lists() == [[1], [7, 8]]
    with pytest.raises(ValueError, match="2 rows but 1"):
        base.set_rows(np.array([0, 1]), RaggedArray.from_lists([[1]], np.int64))


@pytest.mark.parametrize("offsets, values, needle", [
    ([1, 2], [0, 0], "start at 0"),
    ([], [], "non-empty"),
    ([0, 2, 1], [0, 0], "non-decreasing"),
    ([0, 1, 3], [0, 0], "offsets"),
    ([[0, 1]], [0], "1-D"),
])
def test_invalid_layouts_are_refused(offsets, values, needle):
    with pytest.raises(ValueError, match=needle):
        RaggedArray(np.array(offsets, dtype=np.int64), np.array(values))


def test_empty_and_concat_edge_cases():
    e = RaggedArray.empty(3, np.float32)
    assert e.to_lists() == [[], [], []] and e.dtype == np.float32
    assert RaggedArray.from_lists([], np.int64).to_lists() == []
    with pytest.raises(ValueError):
        RaggedArray.concat([])
    assert not e.equals(RaggedArray.empty(2, np.float32))
    assert not RaggedArray.from_lists([[1]], np.int64).equals(RaggedArray.from_lists([[2]], np.int64))
