"""Sampling policies: determinism whatever the row order, sizes, per-agent cap, outcome-first, per decision, cohorts."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.correct import LabelError, load_replies
from socius.correct.sampling import needed_extraction, parse_spec, run_world, sample, sample_keys
from socius.ecs import Component, Scalar, World

DECISIONS = ("guess", "post", "rate")


def replies_table(rows) -> pa.Table:
    """A replies table from ``(tick, decision, kind, entity, completion_index)`` tuples (as load_replies gives)."""
    tick, dec, kind, ent, idx = (list(c) for c in zip(*rows)) if rows else ([], [], [], [], [])
    m = len(rows)
    return pa.table({
        "run": pa.array(["r"] * m, pa.string()), "tick": pa.array(tick, pa.int64()),
        "decision": pa.array(dec, pa.string()), "kind": pa.array(kind, pa.string()),
        "entity": pa.array(ent, pa.int64()), "prompt_hash": pa.array([hash((t, d, k)) % 10**9 for t, d, k, *_ in rows],
                                                                     pa.int64()),
        "prompt": pa.array([f"{r}" for r in rows], pa.large_string()),
        "completion": pa.array([f"reply {e}" for e in ent], pa.large_string()),
        "model": pa.array([""] * m, pa.string()), "adapter": pa.array([""] * m, pa.string()),
        "seed": pa.array([0] * m, pa.int64()), "completion_index": pa.array(idx, pa.int64()),
        "error": pa.array([""] * m, pa.string()),
    })


# unique (tick, decision, kind, entity) rows; completion_index 0
ROWS = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(DECISIONS), st.sampled_from(("answer", "extract")),
                          st.integers(0, 15), st.just(0)),
                min_size=0, max_size=80, unique_by=lambda r: r[:4])
SPECS = st.one_of(
    st.builds(lambda k: f"uniform:{k}", st.integers(0, 100)),
    st.builds(lambda k: f"per-decision:{k}", st.integers(0, 30)),
    st.builds(lambda k: f"outcome-first:{k}", st.integers(0, 100)),
    st.builds(lambda k, n, p: f"{p}:{k},cap:{n}", st.integers(0, 100), st.integers(1, 4),
              st.sampled_from(("uniform", "per-decision", "outcome-first"))),
)


def identities(t: pa.Table, rows) -> list:
    sub = t.take(pa.array(np.asarray(rows, np.int64)))
    return list(zip(*(sub.column(c).to_pylist() for c in ("tick", "decision", "kind", "entity"))))


@settings(max_examples=80, deadline=None)
@given(rows=ROWS, spec=SPECS, seed=st.integers(0, 2**31), perm=st.randoms(use_true_random=False))
def test_same_seed_same_rows_whatever_the_order(rows, spec, seed, perm):
    t = replies_table(rows)
    got = sample(t, spec, seed)
    assert np.array_equal(got, sample(t, spec, seed))
    shuffled = list(rows)
    perm.shuffle(shuffled)
    t2 = replies_table(shuffled)
    assert identities(t2, sample(t2, spec, seed)) == identities(t, got)
    assert got.dtype == np.int64 and len(set(got.tolist())) == got.shape[0]  # no row twice


@settings(max_examples=80, deadline=None)
@given(rows=ROWS, k=st.integers(0, 100), cap=st.one_of(st.none(), st.integers(1, 4)), seed=st.integers(0, 1000),
       policy=st.sampled_from(("uniform", "outcome-first")))
def test_sizes_and_cap(rows, k, cap, seed, policy):
    t = replies_table(rows)
    got = sample(t, f"{policy}:{k}" + (f",cap:{cap}" if cap else ""), seed)
    ent = t.column("entity").to_numpy()
    if cap is None:
        assert got.shape[0] == min(k, len(rows))
    else:
        per_agent = np.bincount(ent[got], minlength=16) if got.shape[0] else np.zeros(16, int)
        assert per_agent.max() <= cap
        available = np.minimum(np.bincount(ent, minlength=16), cap).sum() if len(rows) else 0
        assert got.shape[0] == min(k, available)


@settings(max_examples=80, deadline=None)
@given(rows=ROWS, k=st.integers(0, 30), seed=st.integers(0, 1000))
def test_per_decision_counts(rows, k, seed):
    t = replies_table(rows)
    got = sample(t, f"per-decision:{k}", seed)
    dec = np.array(t.column("decision").to_pylist(), dtype=object)
    for d in DECISIONS:
        assert (dec[got] == d).sum() == min(k, (dec == d).sum())


@settings(max_examples=80, deadline=None)
@given(rows=ROWS, k=st.integers(0, 100), seed=st.integers(0, 1000))
def test_outcome_first_puts_the_extracted_answers_first(rows, k, seed):
    t = replies_table(rows)
    need = needed_extraction(t)
    want = {(tk, d, e) for tk, d, kd, e, _ in rows if kd == "extract"}
    assert need.tolist() == [kd == "answer" and (tk, d, e) in want for tk, d, kd, e, _ in rows]
    got = sample(t, f"outcome-first:{k}", seed)
    flags = need[got]
    head = min(k, int(need.sum()))
    assert flags[:head].all() and not flags[head:].any()
    # the needed rows come in the same (seed) order as in a uniform sample of them
    order = sample(t, f"uniform:{len(rows)}", seed)
    assert list(got[:head]) == [i for i in order if need[i]][:head]


def test_uniform_is_uniform_and_seeds_differ():
    t = replies_table([(i // 10, "guess", "answer", i, 0) for i in range(50)])
    hits = np.zeros(50)
    for seed in range(600):
        hits[sample(t, "uniform:10", seed)] += 1
    freq = hits / 600
    assert 0.13 < freq.min() and freq.max() < 0.27  # each row ~ 10/50 = 0.2
    assert not np.array_equal(sample(t, "uniform:10", 0), sample(t, "uniform:10", 1))
    # the seed's order is a permutation of the rows
    assert sorted(sample_keys(t, 5).tolist()) == list(range(50))


def test_eligible_rows_only():
    t = replies_table([(0, "guess", "answer" if i % 3 else "extract", i, 0) for i in range(30)])
    answers = np.array(t.column("kind").to_pylist()) == "answer"
    got = sample(t, "uniform:100", 1, eligible=answers)
    assert sorted(got.tolist()) == np.flatnonzero(answers).tolist()
    with pytest.raises(LabelError, match="eligible"):
        sample(t, "uniform:3", 1, eligible=answers[:5])


class Person(Component):
    age = Scalar(np.int64)
    group = Scalar(np.int64)


def test_per_cohort_selects_agents_meeting_every_condition():
    w = World(seed=1)
    ids = w.spawn(40, {Person: {"age": np.arange(40) * 2, "group": np.arange(40) % 4}})
    t = replies_table([(tick, "guess", "answer", int(e), 0) for tick in range(3) for e in ids])
    got = sample(t, "per-cohort:100:Person.age >= 40 and Person.group == 3", 7, world=w)
    ent = t.column("entity").to_numpy()[got]
    want = ids[(np.arange(40) * 2 >= 40) & (np.arange(40) % 4 == 3)]
    assert sorted(set(ent.tolist())) == sorted(want.tolist()) and got.shape[0] == 3 * want.shape[0]
    capped = sample(t, "per-cohort:100:Person.age >= 40 and Person.group == 3,cap:1", 7, world=w)
    assert sorted(t.column("entity").to_numpy()[capped].tolist()) == sorted(want.tolist())
    assert sample(t, {"policy": "per-cohort", "k": 2, "where": "Person.group == 0"}, 7, world=w).shape[0] == 2
    with pytest.raises(LabelError, match="needs the run's world"):
        sample(t, "per-cohort:5:Person.group == 0", 7)
    with pytest.raises(LabelError, match="Nobody"):
        sample(t, "per-cohort:5:Nobody.x == 1", 7, world=w)


@pytest.mark.parametrize("spec,want", [
    ("uniform:200", {"policy": "uniform", "k": 200, "cap": None, "where": None}),
    ("outcome-first:100,cap:2", {"policy": "outcome-first", "k": 100, "cap": 2, "where": None}),
    ("cap:3, per-decision:5", {"policy": "per-decision", "k": 5, "cap": 3, "where": None}),
    ("per-cohort:10:Profile.occupation in ['a', 'b'],cap:1",
     {"policy": "per-cohort", "k": 10, "cap": 1, "where": "Profile.occupation in ['a', 'b']"}),
    ({"policy": "uniform", "k": 4}, {"policy": "uniform", "k": 4, "cap": None, "where": None}),
])
def test_parse_spec(spec, want):
    assert parse_spec(spec) == want


@pytest.mark.parametrize("spec,match", [
    ("random:3", "unknown policy"), ("uniform", "needs a count"), ("uniform:x", "integer"),
    ("uniform:3,outcome-first:2", "more than one"), ("cap:2", "needs one policy"), ("uniform:-1", ">= 0"),
    ("uniform:3,cap:0", ">= 1"), ("per-cohort:3", "expression"), ({"policy": "uniform", "n": 3}, "unknown keys"),
    (7, "string or a dict"),
])
def test_bad_specs(spec, match):
    with pytest.raises(LabelError, match=match):
        parse_spec(spec)


def test_on_a_real_run(tmp_path):
    from socius.app.cli import main
    out = tmp_path / "run"
    assert main(["run", "guess", "--agents", "200", "--rounds", "2", "--engine", "mock", "--seed", "1",
                 "--out", str(out), "--quiet"]) == 0
    t = load_replies(out)
    w = run_world(out)
    assert w.tick == 2
    got = sample(t, "per-cohort:20:Profile.age >= 40,cap:1", 3, world=w)
    prof = [c for c in w.component_types() if c.__name__ == "Profile"][0]
    old = w.ids_of(prof)[w.get(prof, "age") >= 40]
    ent = t.column("entity").to_numpy()[got]
    assert got.shape[0] == 20 and np.isin(ent, old).all() and np.unique(ent).shape[0] == 20
    first = sample(t, "outcome-first:5", 3)
    assert needed_extraction(t)[first].all()
    with pytest.raises(LabelError, match="no snapshot"):
        run_world(tmp_path)
