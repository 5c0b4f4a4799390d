"""Job market with the mock engine: helpers, the hiring pipeline's invariants, runs, ranks, configs."""
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.ecs import RaggedArray, World
from socius.mpi import attach_ranks, run_ranks
from socius.app.cli import main
from socius.scenarios.jobs import (SCENARIO, JobMarket, JobsConfig, JobsRuntime, Opening, Search, Seeker, Vacancy,
                                   build, market)
from socius.scenarios.jobs.mock import jobs_policy
from socius.app.engines import EngineChoice
from socius.app.run import build_world
from socius.llm import LLM
from socius.llm import MockEngine
from socius.text.vector_index import VectorIndex


# ------------------------------------------------------------------ helpers
@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(1, 9), max_size=6), min_size=1, max_size=8))
def test_chosen_numbers_reads_the_numbers_a_reply_names(picks):
    replies = np.array([", ".join(map(str, p)) if i % 2 else " and ".join(map(str, p)) for i, p in enumerate(picks)],
                       dtype=np.dtypes.StringDType())
    got = market.chosen_numbers(replies, 9)
    for i, p in enumerate(picks):
        assert set(np.flatnonzero(got[i]) + 1) == set(p)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 50), max_size=5), min_size=1, max_size=6),
       st.lists(st.tuples(st.integers(0, 5), st.integers(0, 50)), max_size=10))
def test_append_ragged_and_membership(rows, extra):
    old = RaggedArray.from_lists(rows, np.int64)
    extra = [(r % len(rows), v) for r, v in extra]
    add_rows = np.array([r for r, _ in extra], dtype=np.int64)
    add_vals = np.array([v for _, v in extra], dtype=np.int64)
    new = old.append(add_rows, add_vals)
    expect = [list(r) for r in rows]
    for r, v in extra:
        expect[r].append(v)
    assert new.to_lists() == expect
    probe_rows = np.repeat(np.arange(len(rows)), 51)
    probe_vals = np.tile(np.arange(51), len(rows))
    got = market.in_ragged(new, probe_rows, probe_vals)
    assert got.tolist() == [v in expect[r] for r, v in zip(probe_rows, probe_vals)]


def test_group_orders_by_key_within_target():
    targets = np.array([7, 3, 7, 3, 7])
    key = np.array([0.1, 0.9, 0.5, 0.2, 0.5])
    order, uniq, counts, pos = market.group(targets, key)
    assert uniq.tolist() == [3, 7] and counts.tolist() == [2, 3]
    assert order.tolist() == [1, 3, 2, 4, 0] and pos.tolist() == [0, 1, 0, 1, 2]


# ------------------------------------------------------------------ runs
def run(ticks: int, seed: int = 1, **kw) -> World:
    w = build_world(SCENARIO, JobsConfig(**{"agents": 120, "employers": 20, **kw}), seed, EngineChoice("mock"))
    w.step(ticks)
    return w


@pytest.fixture(scope="module")
def market10():
    return run(10)


def test_the_market_clears_through_the_pipeline(market10):
    w = market10
    h = w.resource(JobMarket).history
    assert [r["tick"] for r in h] == list(range(10))
    rates = [r["employment_rate"] for r in h]
    assert rates[0] == 0.0 and rates[-1] > 0.1
    assert all(b >= a for a, b in zip(rates, rates[1:]))           # hires never leave their job
    # messages move one stage per tick: application → invite → answer → offer → hire
    first = {k: next(r["tick"] for r in h if r[k] > 0) for k in ("applications", "invites", "answers", "offers",
                                                                 "hires")}
    assert first == {"applications": 0, "invites": 1, "answers": 2, "offers": 3, "hires": 4}
    for a, b in zip(h, h[1:]):
        assert b["accepted"] + b["declined"] == a["offers"]          # every offer is answered next tick
        assert b["answers"] <= a["invites"] and b["invites"] <= a["applications"]
    assert all(r["time_to_hire"] >= 5 for r in h if r["hires"])
    accept = [r["offer_acceptance"] for r in h if r["accepted"] + r["declined"]]
    assert all(0 <= x <= 1 for x in accept) and 0 < h[-1]["offer_acceptance_total"] < 1


def test_each_hire_fills_one_opening_and_leaves_the_pool(market10):
    w = market10
    s = w.query(Seeker, Search)
    employed = s[Search].status == 1
    jobs = s[Search].job[employed]
    assert np.unique(jobs).shape[0] == jobs.shape[0]                # no opening hires twice
    o = w.query(Opening, Vacancy)
    filled = o[Vacancy].status == 1
    # the openings filled by the end are exactly those whose hire was made before the last tick
    hired_before = s.ids[employed & (s[Search].hired_tick < w.tick - 1)]
    assert set(o[Vacancy].hired[filled].tolist()) == set(hired_before.tolist())
    assert (s[Search].salary[employed] > 0).all() and (s[Search].salary[~employed] == 0).all()
    assert (s[Search].applications == s[Search].applied.lengths).all()
    # a seeker never applies twice to one opening
    applied = s[Search].applied
    pairs = applied.row_ids() * 10**6 + applied.values
    assert np.unique(pairs).shape[0] == pairs.shape[0]


def test_the_board_is_a_faiss_index_over_the_open_ads(market10):
    w = market10
    rt = w.resource(JobsRuntime)
    assert isinstance(rt.board, VectorIndex)
    open_ids = w.ids_of(Vacancy)[w.get(Vacancy, "status") == 0]
    # the board was built before this tick's hires closed openings: it holds every opening open now
    assert set(open_ids.tolist()) <= set(rt.board_ids.tolist())


def test_same_seed_same_hash():
    small = {"agents": 50, "employers": 8}
    assert run(5, seed=3, **small).state_hash() == run(5, seed=3, **small).state_hash() \
        != run(5, seed=4, **small).state_hash()


def test_two_ranks_give_the_one_rank_history():
    cfg = JobsConfig(agents=60, employers=10)

    def on_rank(ctx):
        from socius.mpi import distribute
        w = World(seed=5)
        attach_ranks(w, ctx)
        w.insert_resource(LLM({"": MockEngine(jobs_policy(), seed=5)}))
        build(w, cfg)
        distribute(w)
        w.step(7)
        return w.resource(JobMarket).history, w.state_hash()

    (one, h1), = run_ranks(1, on_rank)
    two = run_ranks(2, on_rank)
    same = lambda h: json.dumps(h, sort_keys=True)  # noqa: E731 — NaN-aware comparison
    assert same(two[0][0]) == same(two[1][0]) == same(one)
    assert one[-1]["hires"] + one[-2]["hires"] > 0
    assert two[0][1] == two[1][1] == h1


def test_cli_run_replay_and_resume_give_the_same_hash(tmp_path, capsys):
    base = ["run", "jobs", "--agents", "50", "--seed", "2", "--engine", "mock", "--quiet"]
    assert main(base + ["--steps", "6", "--out", str(tmp_path / "full")]) == 0
    full = capsys.readouterr().out.strip().splitlines()[-1]
    m = pq.read_table(tmp_path / "full" / "metrics.parquet")
    assert m.column("tick").to_pylist() == list(range(6))
    for f in ("hires.parquet", "openings.parquet", "jobs_ticks.png", "decisions.parquet"):
        assert (tmp_path / "full" / f).is_file()
    hires = pq.read_table(tmp_path / "full" / "hires.parquet")
    assert hires.num_rows == m.column("employed").to_pylist()[-1]
    assert main(["run", "jobs", "--agents", "50", "--seed", "2", "--steps", "6", "--quiet",
                 "--replay", str(tmp_path / "full")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == full
    assert main(base + ["--steps", "3", "--out", str(tmp_path / "part")]) == 0
    capsys.readouterr()
    assert main(base + ["--steps", "6", "--resume", str(tmp_path / "part")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == full


def test_an_intervention_lowers_expectations_from_its_tick():
    cut = [{"tick": 2, "set": "Seeker.expected", "value": 20.0, "where": "Seeker.field == 'sales'"}]
    w = run(2, interventions=cut)
    sales = w.get(Seeker, "field") == "sales"
    assert sales.any() and (w.get(Seeker, "expected")[sales] > 20).all()      # not yet: tick 2 has not run
    w.step(1)
    assert (w.get(Seeker, "expected")[sales] == 20).all() and (w.get(Seeker, "expected")[~sales] > 20).all()


@pytest.mark.parametrize("toml, field", [
    ("[[interventions]]\ntick = 1\nset = \"Seeker\"\nvalue = 1", "interventions[0].set"),
    ("employers = 0", "employers"),
    ("search_k = 20", "search_k"),
    ("max_invites = 9\nshortlist = 4", "max_invites"),
    ('embedder = "word2vec"', "embedder"),
    ('index = "annoy"', "index"),
    ("[seekers.experience]\ndist = \"normal\"\nmean = 5\nstd = -1", "seekers.experience.std"),
    ("[openings.title]\ndist = \"dice\"", "openings.title.dist"),
    ("vacancies = 3", "vacancies"),
])
def test_bad_configs_exit_2_naming_the_field(tmp_path, capsys, toml, field):
    f = tmp_path / "c.toml"
    f.write_text(toml + "\n")
    with pytest.raises(SystemExit) as e:
        main(["run", "jobs", "--engine", "mock", "--config", str(f)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err


def test_an_intervention_on_an_unknown_component_exits_2(tmp_path, capsys):
    f = tmp_path / "c.toml"
    f.write_text('agents = 20\nemployers = 2\n[[interventions]]\ntick = 1\nset = "Nowhere.x"\nvalue = 1\n')
    assert main(["run", "jobs", "--engine", "mock", "--steps", "1", "--config", str(f)]) == 2
    cap = capsys.readouterr()
    said = cap.out + cap.err
    assert "interventions[0].set" in said and "Nowhere" in said and "Traceback" not in said


@pytest.mark.embeddings
def test_the_real_sentence_model_ranks_matching_ads_first():
    w = run(1, embedder="minilm")
    rt = w.resource(JobsRuntime)
    assert type(rt.embedder).__name__ == "SentenceTransformerEmbedder"
    s, o = w.query(Seeker), w.query(Opening)
    top, _ = rt.board.search(s[Seeker].embedding, 1)
    field = o[Opening].field[np.searchsorted(o.ids, top[:, 0])]
    assert (field == s[Seeker].field).mean() > 0.8   # a CV's best ad is one of its own field
    assert w.resource(JobMarket).history[0]["applications"] > 0
