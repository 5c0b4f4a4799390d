"""The label store: make_labels, Parquet round trip, latest-wins reads, fingerprints, bad input."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socius.correct import LABEL_SCHEMA, REPLY_COLUMNS, LabelError, LabelStore, make_labels

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def fake_replies(m: int, run: str = "r") -> pa.Table:
    """``m`` replies shaped like load_replies' output (distinct entities)."""
    i = np.arange(m)
    return pa.table({
        "run": pa.array([run] * m, pa.string()), "tick": pa.array(i // 10, pa.int64()),
        "decision": pa.array(["guess"] * m, pa.string()), "kind": pa.array(["answer"] * m, pa.string()),
        "entity": pa.array(i, pa.int64()), "prompt_hash": pa.array(i * 7919 - 5, pa.int64()),
        "prompt": pa.array([f"prompt {k}" for k in i], pa.large_string()),
        "completion": pa.array([f'{{"number": {k % 100}}}' for k in i], pa.large_string()),
        "model": pa.array([""] * m, pa.string()), "adapter": pa.array([""] * m, pa.string()),
        "seed": pa.array(i * 3, pa.int64()),
    })


def test_make_labels_copies_the_reply_and_hashes_the_content():
    r = fake_replies(4)
    t = make_labels(r, "human:ann", score=[1, 5, None, 3], revision=[None, None, "better", "x"],
                    rationale=["bad", None, None, None], time=T0)
    assert t.schema.equals(LABEL_SCHEMA)
    for c in REPLY_COLUMNS:
        assert t.column(c).to_pylist() == r.column(c).to_pylist()
    assert t.column("score").to_pylist() == [1, 5, None, 3]
    assert t.column("source").to_pylist() == ["human:ann"] * 4
    ids = t.column("label_id").to_pylist()
    assert len(set(ids)) == 4 and all(len(x) == 16 for x in ids)
    later = make_labels(r, "human:ann", score=[1, 5, None, 3], revision=[None, None, "better", "x"],
                        time=T0 + timedelta(days=1))
    assert later.column("label_id").to_pylist() == ids  # stable across time and rationale: re-imports match
    other = make_labels(r, "human:bob", score=[1, 5, None, 3], revision=[None, None, "better", "x"], time=T0)
    assert not set(other.column("label_id").to_pylist()) & set(ids)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scores=st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=1, max_size=30),
       revise=st.data())
def test_store_round_trip(tmp_path_factory, scores, revise):
    run = tmp_path_factory.mktemp("store")
    m = len(scores)
    revisions = [None if s is not None and not revise.draw(st.booleans()) else f"rev {k}"
                 for k, s in enumerate(scores)]
    t = make_labels(fake_replies(m), "judge:gemma", score=scores, revision=revisions, time=T0)
    store = LabelStore(run)
    half = m // 2
    store.append(t.slice(0, half))
    store.append(t.slice(half))
    assert len(store.parts()) == (2 if half else 1)
    back = store.read()
    assert back.schema.equals(LABEL_SCHEMA)
    key = lambda tab: sorted(zip(tab.column("label_id").to_pylist(), tab.column("score").to_pylist(),  # noqa: E731
                                 tab.column("revision").to_pylist()), key=str)
    assert key(back) == key(t)
    assert not list((run / "labels").glob(".*.tmp"))  # no temporary file left behind


def test_read_latest_keeps_the_newest_label_per_reply_and_source(tmp_path):
    r = fake_replies(3)
    store = LabelStore(tmp_path)
    store.append(make_labels(r, "human:ann", score=[1, 1, 1], time=T0))
    store.append(make_labels(r.slice(0, 2), "human:ann", score=[4, 5], time=T0 + timedelta(hours=1)))
    store.append(make_labels(r.slice(0, 1), "human:bob", score=[2], time=T0 + timedelta(hours=2)))
    assert store.read().num_rows == 6
    latest = store.read(latest=True)
    got = sorted(zip(latest.column("source").to_pylist(), latest.column("entity").to_pylist(),
                     latest.column("score").to_pylist()))
    assert got == [("human:ann", 0, 4), ("human:ann", 1, 5), ("human:ann", 2, 1), ("human:bob", 0, 2)]
    times = latest.column("time").to_pylist()
    assert times == sorted(times)


@settings(max_examples=25, deadline=None)
@given(perm_seed=st.integers(0, 2**32 - 1), m=st.integers(1, 20))
def test_fingerprint_ignores_order(perm_seed, m):
    t = make_labels(fake_replies(m), "rule:range", score=(np.arange(m) % 5 + 1).tolist(), time=T0)
    perm = np.random.default_rng(perm_seed).permutation(m)
    store = LabelStore("/nonexistent-run")
    assert store.fingerprint(t) == store.fingerprint(t.take(pa.array(perm)))
    if m > 1:
        assert store.fingerprint(t) != store.fingerprint(t.slice(1))


def test_fingerprint_of_the_store_matches_its_table(tmp_path):
    store = LabelStore(tmp_path)
    assert store.read().num_rows == 0 and store.parts() == []
    t = make_labels(fake_replies(5), "human:ann", score=[1, 2, 3, 4, 5], time=T0)
    store.append(t.slice(3))
    store.append(t.slice(0, 3))
    assert store.fingerprint() == store.fingerprint(t)
    assert store.append(t.slice(0, 0)) is None


@pytest.mark.parametrize("source", ["ann", "human:", "robot:x", ""])
def test_bad_source(source):
    with pytest.raises(LabelError, match="source"):
        make_labels(fake_replies(1), source, score=[3])


def test_bad_labels():
    r = fake_replies(3)
    with pytest.raises(LabelError, match="1..5"):
        make_labels(r, "human:ann", score=[1, 6, 3])
    with pytest.raises(LabelError, match="1..5"):
        make_labels(r, "human:ann", score=[0, 2, 3])
    with pytest.raises(LabelError, match="score or a revision"):
        make_labels(r, "human:ann", score=[1, None, 3])
    with pytest.raises(LabelError, match="2 values for 3"):
        make_labels(r, "human:ann", score=[1, 2])
    with pytest.raises(LabelError, match="lack columns"):
        make_labels(r.drop_columns(["prompt_hash"]), "human:ann", score=[1, 2, 3])


def test_corrupt_or_foreign_parts_are_named(tmp_path):
    store = LabelStore(tmp_path)
    store.append(make_labels(fake_replies(2), "human:ann", score=[1, 2], time=T0))
    bad = store.dir / "part-zzz-corrupt.parquet"
    bad.write_bytes(b"PAR1 garbage")
    with pytest.raises(LabelError, match="part-zzz-corrupt"):
        store.read()
    bad.unlink()
    foreign = store.dir / "part-zzz-foreign.parquet"
    pq.write_table(pa.table({"score": [1]}), foreign)
    with pytest.raises(LabelError, match="part-zzz-foreign.*columns differ"):
        store.read()
    foreign.unlink()
    bad_score = make_labels(fake_replies(1), "human:ann", score=[3], time=T0)
    bad_score = bad_score.set_column(bad_score.schema.get_field_index("score"), "score", pa.array([9], pa.int8()))
    pq.write_table(bad_score, store.dir / "part-zzz-score.parquet")
    with pytest.raises(LabelError, match="part-zzz-score.*1..5"):
        store.read()
    with pytest.raises(LabelError, match="1..5"):
        store.append(bad_score)
