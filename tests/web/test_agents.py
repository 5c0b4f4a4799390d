"""AgentTable: server-side filter, search, sort, page and histogram equal a plain numpy reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.components.memory import LongTermMemory, ShortTermMemory
from socius.components.profile import Profile
from socius.ecs import World
from socius.systems import MemoryEmbedder, memorize
from socius.text.embed import HashingEmbedder
from socius.web.agent_page import agent_view
from socius.web.agents import AgentTable, QueryError, split_where

JOBS = np.array(["nurse", "driver", "teacher", "Nurse aide"])


def world_of(ages, jobs, incomes):
    w = World(seed=1)
    w.spawn(len(ages), {Profile: {"age": np.asarray(ages, np.int32), "occupation": JOBS[np.asarray(jobs)],
                                  "income": np.asarray(incomes, np.float32)}})
    return w


columns = st.integers(1, 60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 9), min_size=n, max_size=n), st.lists(st.integers(0, 3), min_size=n, max_size=n),
    st.lists(st.sampled_from([0.0, 1.5, -2.0, 7.25]), min_size=n, max_size=n)))


@settings(max_examples=40, deadline=None)
@given(cols=columns, sort=st.sampled_from(["Profile.age", "Profile.occupation", "Profile.income"]),
       desc=st.booleans(), offset=st.integers(0, 70), limit=st.integers(1, 30), cut=st.integers(0, 9))
def test_page_equals_reference(cols, sort, desc, offset, limit, cut):
    ages, jobs, incomes = cols
    w = world_of(ages, jobs, incomes)
    table = AgentTable(w)
    page = table.page(where=f"Profile.age >= {cut}", sort=sort, desc=desc, offset=offset, limit=limit,
                      columns=["Profile.age", sort])
    ids = w.ids_of(Profile)
    values = {"Profile.age": np.asarray(ages), "Profile.occupation": JOBS[np.asarray(jobs)],
              "Profile.income": np.asarray(incomes, np.float32)}[sort]
    keep = np.asarray(ages) >= cut
    _, rank = np.unique(values, return_inverse=True)
    order = np.lexsort((ids, -rank if desc else rank))  # by value, ties by ID
    order = order[keep[order]]
    assert page["total"] == int(keep.sum())
    assert page["ids"] == ids[order][offset:offset + limit].tolist()
    assert page["columns"]["Profile.age"] == np.asarray(ages)[order][offset:offset + limit].tolist()


@settings(max_examples=30, deadline=None)
@given(cols=columns, needle=st.sampled_from(["nurse", "NURSE", "aide", "x", "er"]))
def test_search_is_case_blind_substring(cols, needle):
    ages, jobs, incomes = cols
    table = AgentTable(world_of(ages, jobs, incomes))
    want = np.char.find(np.char.lower(JOBS[np.asarray(jobs)].astype(str)), needle.lower()) >= 0
    page = table.page(q=needle, limit=500, columns=["Profile.occupation"])
    assert page["total"] == int(want.sum())
    assert all(needle.lower() in v.lower() for v in page["columns"]["Profile.occupation"])


@settings(max_examples=30, deadline=None)
@given(cols=columns, bins=st.integers(1, 30))
def test_histogram_counts_every_selected_value(cols, bins):
    ages, jobs, incomes = cols
    table = AgentTable(world_of(ages, jobs, incomes))
    h = table.histogram("Profile.income", where="Profile.age < 5", bins=bins)
    sel = np.asarray(incomes)[np.asarray(ages) < 5]
    assert h["total"] == sel.size and sum(h["counts"]) == sel.size
    if sel.size:
        assert len(h["edges"]) == len(h["counts"]) + 1
        assert h["edges"][0] <= sel.min() and h["edges"][-1] >= sel.max()


def test_integer_histogram_has_one_bin_per_value():
    table = AgentTable(world_of([1, 2, 2, 5], [0, 0, 0, 0], [0, 0, 0, 0]))
    h = table.histogram("Profile.age")
    assert h["counts"] == [1, 2, 0, 0, 1] and h["edges"][0] == 0.5


def test_bad_queries_name_the_problem():
    table = AgentTable(world_of([1, 2], [0, 1], [0, 0]))
    with pytest.raises(QueryError, match="no column 'Profile.nope'"):
        table.page(sort="Profile.nope")
    with pytest.raises(QueryError, match="no component named 'Nobody'"):
        table.page(where="Nobody.x == 1")
    with pytest.raises(QueryError, match="not a numeric column"):
        table.histogram("Profile.occupation")
    with pytest.raises(QueryError, match="limit"):
        table.page(limit=0)


def test_split_where_keeps_and_inside_quotes():
    assert split_where("Profile.age >= 3 and Profile.occupation == 'bread and butter'") == \
        ["Profile.age >= 3", "Profile.occupation == 'bread and butter'"]


def test_entities_without_a_component_sort_last_with_null():
    from socius.ecs import Component, Scalar

    class Score(Component, name="tests.web.Score"):
        value = Scalar(np.float64)

    w = world_of([3, 1, 2], [0, 1, 2], [0, 0, 0])
    ids = w.ids_of(Profile)
    w.add_component(ids[:2], Score, value=np.array([5.0, 4.0]))
    page = AgentTable(w).page(sort="Score.value", columns=["Score.value"])
    assert page["ids"] == [int(ids[1]), int(ids[0]), int(ids[2])]
    assert page["columns"]["Score.value"] == [4.0, 5.0, None]


def test_agent_view_has_memories_as_text_newest_first():
    w = World(seed=1)
    ids = w.spawn(2, {Profile: {"name": np.array(["a", "<script>alert(1)</script>"])}, ShortTermMemory: {},
                      LongTermMemory: {}})
    w.insert_resource(MemoryEmbedder(HashingEmbedder(384)))
    memorize(w, ids, np.array(["old a", "<b>old</b>"]), importance=np.array([3.0, 4.0]))
    w.step(1)
    memorize(w, ids, np.array(["new a", "new b"]), importance=np.array([3.0, 6.0]))
    view = agent_view(w, int(ids[1]))
    assert view["components"]["Profile"]["name"] == "<script>alert(1)</script>"  # raw text, the page escapes
    for name in ("ShortTermMemory", "LongTermMemory"):
        assert [m["text"] for m in view["memory"][name]] == ["new b", "<b>old</b>"]
        assert [m["tick"] for m in view["memory"][name]] == [1, 0]
    assert "embedding" not in str(view["components"])
    with pytest.raises(KeyError):
        agent_view(w, 999)


@settings(max_examples=25, deadline=None)
@given(cols=columns, queries=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 20), st.booleans()),
                                      min_size=1, max_size=80))
def test_kept_answers_equal_fresh_ones_and_stay_bounded(cols, queries):
    from socius.web.agents import ANSWERS
    ages, jobs, incomes = cols
    table = AgentTable(world_of(ages, jobs, incomes))
    fresh = AgentTable(world_of(ages, jobs, incomes))
    for cut, offset, desc in queries + queries[::-1]:  # asked again: from the kept answers
        args = dict(where=f"Profile.age >= {cut}", sort="Profile.income", desc=desc, offset=offset, limit=5)
        assert table.page(**args) == fresh._page(args["where"], "", "Profile.income", desc, offset, 5,
                                                 fresh.default_columns())
        fresh._answers.clear()
        assert table.histogram("Profile.age", where=f"Profile.age >= {cut}", bins=5) == \
            fresh._histogram("Profile.age", f"Profile.age >= {cut}", "", 5)
    assert len(table._answers) <= ANSWERS
