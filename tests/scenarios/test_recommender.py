"""The recommender scenario and the fluctuation experiment: data, algorithms, runs, metrics, CLI."""
import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.ecs import World
from socius.ecs.ragged import RaggedArray
from socius.app.cli import main
from socius.scenarios.recommender import (SCENARIO, Choice, History, Mention, RecommenderConfig, RecState,
                                          genre_entropy, metrics, recsys)
from socius.scenarios.recommender import synthetic
from socius.scenarios.recommender.data import GENRES, SYNTHETIC, DataError, load_catalogue
from socius.scenarios.recommender.fluctuation import loglog_slope, run_fluctuation, sample_pairs
from socius.scenarios.recommender.prompts import snap
from socius.app.engines import EngineChoice, llm_resource
from socius.app.run import build_world

GRID = np.arange(1, 11) / 2


def run_world(cfg: RecommenderConfig, ticks: int, seed: int = 1) -> World:
    w = build_world(SCENARIO, cfg, seed, EngineChoice("mock"))
    w.step(ticks)
    return w


# ---------------------------------------------------------------- data
def test_shipped_catalogue_is_what_the_generator_writes(tmp_path):
    cat = load_catalogue()
    assert cat.n_items == 300 and cat.n_users == 200 and cat.genres.shape == (300, len(GENRES))
    assert cat.genres.any(axis=1).all() and np.isin(cat.rating, GRID).all()
    synthetic.write(tmp_path)
    for name in ("movies.csv", "ratings.csv"):
        assert (tmp_path / name).read_bytes() == (SYNTHETIC / name).read_bytes()


def test_ml100k_layout(tmp_path):
    flags = ["0"] * 19
    flags[4] = flags[5] = "1"  # Children's, Comedy
    items = [f"1|Toy Story (1995)|01-Jan-1995||http://x|{'|'.join(flags)}",
             f"2|Caf\xe9 Noir (1942)|01-Jan-1942||http://y|{'|'.join(['1'] + ['0'] * 18)}"]
    (tmp_path / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (tmp_path / "u.data").write_text("7\t1\t5\t1\n9\t2\t3\t2\n7\t2\t4\t3\n")
    cat = load_catalogue(tmp_path)
    assert cat.title.tolist() == ["Toy Story (1995)", "Café Noir (1942)"]
    assert cat.genre_names().tolist() == ["Children|Comedy", "(no genres listed)"]
    assert cat.n_users == 2 and cat.counts().tolist() == [1, 2] and cat.half_star_sums().tolist() == [10, 14]


@pytest.mark.parametrize("movies, ratings, needle", [
    (None, "userId,movieId,rating\n1,1,4.0\n", "movies.csv"),
    ("movieId,title,genres\n1,A (1990),Drama\n", "userId,movieId,rating\n1,1,6.0\n", "6.0"),
    ("movieId,title,genres\n1,A (1990),Drama\n", "userId,movieId,rating\n1,2,4.0\n", "movie 2"),
    ("movieId,title,genres\n1,A (1990),Drama\n", "userId,movieId,rating\n1,1,4.2\n", "steps of 0.5"),
    ("movieId,name,genres\n1,A (1990),Drama\n", "userId,movieId,rating\n1,1,4.0\n", "title"),
    ("movieId,title,genres\nx,A (1990),Drama\n", "userId,movieId,rating\n1,1,4.0\n", "movies.csv"),
])
def test_bad_data_raises_naming_the_file(tmp_path, movies, ratings, needle):
    if movies is not None:
        (tmp_path / "movies.csv").write_text(movies)
    (tmp_path / "ratings.csv").write_text(ratings)
    with pytest.raises(DataError) as e:
        load_catalogue(tmp_path)
    assert needle in str(e.value)


def test_bad_data_folder_exits_2_naming_data(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "recommender", "--engine", "mock", "--config", str(_toml(tmp_path, f'data = "{tmp_path}/no"'))])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "data" in err and "Traceback" not in err


def _toml(tmp_path, text):
    f = tmp_path / "c.toml"
    f.write_text(text + "\n")
    return f


@pytest.mark.parametrize("toml, field", [
    ('recommender = "random"', "recommender"),
    ("page_size = 0", "page_size"),
    ('mf_backend = "torch"', "mf_backend"),
    ('taste = "astrology"', "taste"),
    ("refit_every = 0", "refit_every"),
    ("[[interventions]]\ntick = 1\nset = \"conformity\"\nvalue = 1", "interventions[0].set"),
    ("memories = 9", "memories"),
    ("[population.conformity]\ndist = \"normal\"\nmean = 0.5\nstd = -1", "population.conformity.std"),
])
def test_bad_configs_exit_2_naming_the_field(tmp_path, capsys, toml, field):
    with pytest.raises(SystemExit) as e:
        main(["run", "recommender", "--engine", "mock", "--config", str(_toml(tmp_path, toml))])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err


# ---------------------------------------------------------------- algorithms
@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=50))
def test_snap_lands_on_the_half_star_grid(xs):
    s = snap(np.array(xs))
    assert np.isin(s, GRID).all()
    inside = (np.array(xs) >= 0.5) & (np.array(xs) <= 5.0)
    assert (np.abs(s - np.array(xs))[inside] <= 0.25 + 1e-12).all()


def _ragged(rows):
    return RaggedArray.from_lists(rows, np.int32)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 25).flatmap(lambda m: st.tuples(
    st.lists(st.integers(0, 5), min_size=m, max_size=m),
    st.lists(st.lists(st.integers(0, m - 1), max_size=m, unique=True), min_size=1, max_size=8),
    st.integers(1, 6))))
def test_popularity_ranking_equals_counts(case):
    counts, watched, n = case
    counts = np.array(counts)
    pages = recsys.popularity_pages(counts, _ragged(watched), n)
    for row, seen in zip(pages, watched):
        order = [i for i in np.lexsort((np.arange(counts.shape[0]), -counts)) if i not in seen][:n]
        assert row.tolist() == order + [-1] * (n - len(order))


def test_pages_do_not_depend_on_which_other_users_are_ranked():
    rng = np.random.default_rng(3)
    m, u = 40, 30
    watched = _ragged([rng.choice(m, rng.integers(0, 8), replace=False) for _ in range(u)])
    p, q = rng.normal(size=(u, 4)), rng.normal(size=(m, 4))
    counts = rng.integers(0, 4, m)
    full = recsys.mf_pages(p, q, 3.0, counts, watched, 5)
    sub = np.array([29, 3, 17, 4])
    assert (recsys.mf_pages(p[sub], q, 3.0, counts, watched.take(sub), 5) == full[sub]).all()
    full_pop = recsys.popularity_pages(counts, watched, 5)
    assert (recsys.popularity_pages(counts, watched.take(sub), 5) == full_pop[sub]).all()


def test_content_pages_match_a_brute_force_cosine_ranking():
    pytest.importorskip("faiss")
    from socius.text.vector_index import VectorIndex
    rng = np.random.default_rng(5)
    m, d, u = 60, 16, 12
    vecs = rng.normal(size=(m, d)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    items = _ragged([rng.choice(m, rng.integers(1, 6), replace=False) for _ in range(u)])
    ratings = RaggedArray(items.offsets, rng.choice([3.0, 4.5], items.values.shape[0]).astype(np.float32))
    pages = recsys.content_pages(VectorIndex.build(np.arange(m), vecs), vecs, np.zeros((len(GENRES), d), np.float32),
                                 np.full((u, len(GENRES)), 1 / len(GENRES)), items, ratings, 5, liked=4.0)
    q = recsys.liked_mean(vecs, items, ratings, 4.0)
    for i in range(u):
        if not q[i].any():
            continue
        s = vecs @ (q[i] / np.linalg.norm(q[i]))
        s[items.row(i)] = -np.inf
        assert set(pages[i]) == set(np.argsort(-s)[:5])  # the same items (float ties aside)


def _ratings(seed=0, users=40, items=30, r=1500):
    rng = np.random.default_rng(seed)
    u, i = rng.integers(0, users, r), rng.integers(0, items, r)
    p, q = rng.normal(size=(users, 3)), rng.normal(size=(items, 3))
    return u, i, snap(3.2 + 0.5 * (p[u] * q[i]).sum(axis=1) + rng.normal(0, 0.3, r))


def test_mf_refit_reduces_training_error():
    u, i, r = _ratings()
    baseline = np.sqrt(np.mean((r - r.mean()) ** 2))
    errs = [recsys.rmse(*recsys.fit_als(u, i, r, 40, 30, k=4, iters=t, seed=1), u, i, r) for t in (1, 3, 10)]
    assert errs[0] < baseline and errs[2] <= errs[1] <= errs[0] + 1e-9
    assert errs[2] < 0.6 * baseline
    a, b = recsys.fit_als(u, i, r, 40, 30, k=4, iters=5, seed=1), recsys.fit_als(u, i, r, 40, 30, k=4, iters=5, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a[:2], b[:2]))  # deterministic


def test_jax_mf_gives_the_numpy_ranking():
    pytest.importorskip("jax")
    u, i, r = _ratings(seed=2)
    p1, q1, mu1 = recsys.fit_als(u, i, r, 40, 30, k=4, iters=6, seed=3)
    p2, q2, mu2 = recsys.fit_als_jax(u, i, r, 40, 30, k=4, iters=6, seed=3)
    pred1, pred2 = mu1 + p1 @ q1.T, mu2 + p2 @ q2.T
    assert np.abs(pred1 - pred2).max() < 1e-3
    empty = _ragged([[] for _ in range(40)])
    a = recsys.mf_pages(p1, q1, mu1, np.zeros(30), empty, 5)
    b = recsys.mf_pages(p2, q2, mu2, np.zeros(30), empty, 5)
    assert (a == b).mean() > 0.95


def test_jax_backend_runs_the_scenario_like_numpy():
    pytest.importorskip("jax")
    runs = {b: run_world(RecommenderConfig(agents=120, recommender="mf", mf_backend=b), 3) for b in ("numpy", "jax")}
    assert all(w.resource(RecState).fitted_at == 2 for w in runs.values())
    mn, mj = metrics(runs["numpy"]), metrics(runs["jax"])
    assert np.abs(mn["mean_rating"] - mj["mean_rating"]).max() < 0.25
    assert np.abs(mn["coverage_recommended"] - mj["coverage_recommended"]).max() < 0.05


def test_genre_entropy():
    genres = np.zeros((3, len(GENRES)), bool)
    genres[0, 0] = genres[1, 1] = True
    genres[2, [0, 1]] = True
    h = genre_entropy(_ragged([[0, 0], [0, 1], [2], []]), genres)
    assert h[0] == 0 and h[1] == pytest.approx(1.0) and h[2] == pytest.approx(1.0) and np.isnan(h[3])


# ---------------------------------------------------------------- runs
@pytest.mark.parametrize("rec", ["popularity", "content", "mf"])
def test_runs_are_deterministic_and_ratings_on_the_grid(rec):
    if rec == "content":
        pytest.importorskip("faiss")
    cfg = RecommenderConfig(agents=100, recommender=rec, refit_every=2)
    a, b, c = run_world(cfg, 3, seed=5), run_world(cfg, 3, seed=5), run_world(cfg, 3, seed=6)
    assert a.state_hash() == b.state_hash() != c.state_hash()
    hist = a.get(History, "ratings")
    assert hist.values.shape[0] > 0 and np.isin(hist.values, GRID).all()
    assert np.isin(a.get(History, "own").values, GRID).all()
    m = metrics(a)
    dist = np.stack([m[f"r{k * 5:02d}"] for k in range(1, 11)], axis=1)
    assert (dist.sum(axis=1) == m["watched"]).all() and (m["watched"] <= m["active"]).all()
    assert dist.sum() == hist.values.shape[0]
    assert np.all(np.diff(m["coverage_recommended"]) >= 0)
    assert np.all(m["coverage_watched"] <= m["coverage_recommended"])
    items = a.get(History, "items")
    for row in range(0, 100, 7):  # nobody is recommended (hence watches) the same movie twice
        assert len(set(items.row(row).tolist())) == items.row(row).shape[0]
    if rec == "mf":
        assert a.resource(RecState).fitted_at == 2


@pytest.mark.embeddings
def test_content_recommender_with_the_real_embedding_model():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("faiss")
    from socius.scenarios.recommender import RecSetup
    w = run_world(RecommenderConfig(agents=80, recommender="content", embedder="minilm"), 2)
    setup = w.resource(RecSetup)
    assert setup.item_vecs.shape == (setup.cat.n_items, 384)
    assert np.allclose(np.linalg.norm(setup.item_vecs, axis=1), 1.0, atol=1e-3)
    # a movie's nearest neighbour by title + genres shares a genre with it far more often than chance
    sims = setup.item_vecs @ setup.item_vecs.T
    np.fill_diagonal(sims, -np.inf)
    nn = np.argmax(sims, axis=1)
    shared = (setup.cat.genres & setup.cat.genres[nn]).any(axis=1).mean()
    assert shared > 0.6 and metrics(w)["watched"].sum() > 0


def test_shared_counts_add_the_simulated_ratings():
    w = run_world(RecommenderConfig(agents=100, recommender="popularity"), 3)
    cat = load_catalogue()
    st_ = w.resource(RecState)
    hist = w.get(History, "items")
    added = np.bincount(hist.values, minlength=cat.n_items)
    assert (st_.counts - cat.counts() == added).all()
    half = np.bincount(hist.values, weights=w.get(History, "ratings").values * 2, minlength=cat.n_items)
    assert (st_.half_sums - cat.half_star_sums() == half).all()


def test_conformity_pulls_ratings_toward_the_shown_average():
    never = RecommenderConfig(agents=200, recommender="popularity", population={"conformity": 0.0})
    always = RecommenderConfig(agents=200, recommender="popularity", population={"conformity": 1.0})
    hidden = RecommenderConfig(agents=200, recommender="popularity", show_average=False)
    m0, m1, mh = metrics(run_world(never, 3)), metrics(run_world(always, 3)), metrics(run_world(hidden, 3))
    assert np.all(m0["conformity"][m0["conformity_n"] > 0] == 0)      # rating == own opinion
    assert np.all(m1["conformity"] > 0.3)
    assert np.all(mh["conformity_n"] == 0)
    w = run_world(always, 2)
    c = w.query(Choice)[Choice]
    seen = c.item >= 0
    assert np.allclose(c.rating[seen], snap(c.shown[seen]))   # full conformity posts the shown average


def test_a_scheduled_intervention_takes_effect_at_its_tick():
    cfg = RecommenderConfig(agents=200, recommender="popularity", population={"conformity": 0.0},
                            interventions=[{"tick": 2, "set": "Traits.conformity", "value": 1.0}])
    w = build_world(SCENARIO, cfg, 1, EngineChoice("mock"))
    for tick in range(4):
        w.step(1)
        c = w.query(Choice)[Choice]
        seen = (c.item >= 0) & ~np.isnan(c.shown)
        assert seen.sum() > 50
        if tick < 2:
            assert np.array_equal(c.rating[seen], c.own[seen])              # conformity 0: own opinion
        else:
            assert np.allclose(c.rating[seen], snap(c.shown[seen]))          # conformity 1: the average


def test_interviews_leave_the_world_unchanged():
    from socius.systems import interview
    w = run_world(RecommenderConfig(agents=60, recommender="popularity"), 2)
    before = w.state_hash()
    res = interview(w, np.array([0, 5, 9]), "Which movie did you enjoy most?")
    assert res.answers.shape == (3,) and (np.strings.str_len(res.answers) > 0).all()
    assert w.state_hash() == before


def test_long_term_memory_is_retrieved_for_the_page_and_answers_interviews(tmp_path):
    from socius.components.memory import LongTermMemory
    from socius.systems import interview
    cfg = RecommenderConfig(agents=60, recommender="popularity", long_memory=True, memories=3)
    w = build_world(SCENARIO, cfg, 2, EngineChoice("mock"), out=tmp_path)
    w.step(3)
    w.flush()  # the response log writes on a background thread
    items = w.get(History, "items")
    stored = (w.get(LongTermMemory, "tick") >= 0).sum(axis=1)
    assert (stored >= items.lengths).all() and stored.sum() > 0      # every watch (and friends' news) is stored
    prompts_ = pq.read_table(tmp_path / "responses" / "tick-00000002-browse-answer.parquet").column("prompt")
    assert any("Remembers, most relevant first:\n- Watched " in p or "most relevant first:\n- Friend " in p
               for p in prompts_.to_pylist())
    before = w.state_hash()
    watched = np.flatnonzero(items.lengths > 0)[:3]
    res = interview(w, w.ids_of(History)[watched], "Which movie did you watch?")
    assert (res.outcome == 0).all() and w.state_hash() == before


def test_chats_and_posts_reach_friends_next_tick():
    cfg = RecommenderConfig(agents=200, recommender="content", friends=3)
    pytest.importorskip("faiss")
    w = run_world(cfg, 2)
    m = metrics(w)
    inbox = w.messages.read(Mention)
    assert m["chats"][-1] + m["posts"][-1] > 0
    assert len(inbox) == m["chats"][-1] + 3 * m["posts"][-1]
    c = w.query(Choice)[Choice]
    senders = np.unique(inbox.sender)
    shared = w.query(Choice).ids[c.share > 0]
    assert np.array_equal(senders, shared)
    w.step(1)  # the friends read them: every target now remembers what a friend said
    from socius.systems import recent
    mem = recent(w, np.unique(inbox.target), 8)
    assert (np.strings.startswith(mem, "Friend ").any(axis=1)).all()


def test_cli_run_resume_and_replay_agree(tmp_path, capsys):
    base = ["run", "recommender", "--agents", "60", "--seed", "2", "--engine", "mock", "--quiet"]
    assert main(base + ["--steps", "4", "--out", str(tmp_path / "full")]) == 0
    full = capsys.readouterr().out.strip().splitlines()[-1]
    assert full.startswith("state_hash: ")
    t = pq.read_table(tmp_path / "full" / "metrics.parquet")
    assert t.column("tick").to_pylist() == [0, 1, 2, 3] and "genre_entropy" in t.column_names
    assert (tmp_path / "full" / "recommender.png").is_file()
    assert main(base + ["--steps", "2", "--out", str(tmp_path / "part")]) == 0
    capsys.readouterr()
    assert main(base + ["--steps", "4", "--resume", str(tmp_path / "part")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == full
    assert main(["run", "recommender", "--agents", "60", "--seed", "2", "--steps", "4", "--quiet",
                 "--replay", str(tmp_path / "full")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == full


def test_example_config_runs(capsys):
    from pathlib import Path
    example = Path(SCENARIO.build.__code__.co_filename).parent / "example.toml"
    assert main(["run", "recommender", "--config", str(example), "--engine", "mock", "--steps", "2", "--quiet"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("state_hash: ")


@pytest.mark.parametrize("rec", ["popularity", "mf", "content"])
def test_two_ranks_give_the_one_rank_run(rec):
    if rec == "content":
        pytest.importorskip("faiss")
    from socius.mpi import run_ranks
    cfg = RecommenderConfig(agents=90, recommender=rec, refit_every=2)

    def on_rank(ctx):
        w = build_world(SCENARIO, cfg, 4, EngineChoice("mock"), ranks=ctx)
        w.step(4)
        return repr(w.resource(RecState).history), w.state_hash(), w.ids_of(History)

    (one, h1, ids1), = run_ranks(1, on_rank)
    two = run_ranks(2, on_rank)
    assert two[0][0] == two[1][0] == one and "'watched': 0" not in one
    assert two[0][1] == two[1][1] == h1
    assert sorted(np.r_[two[0][2], two[1][2]].tolist()) == ids1.tolist() and len(two[0][2]) < len(ids1)


# ---------------------------------------------------------------- fluctuation experiment
def _mock_world(seed=0):
    cfg = RecommenderConfig()
    w = World(seed=seed)
    w.insert_resource(llm_resource(SCENARIO, cfg, seed, EngineChoice("mock"), None))
    return w, cfg


def test_pairs_are_rated_pairs_of_the_data():
    cat = load_catalogue()
    ids = np.arange(500)
    items = sample_pairs(cat, ids, 0)
    assert (sample_pairs(cat, ids[::-1], 0)[::-1] == items).all()   # keyed by entity, not by position
    from socius.ecs.rng import EntityRng
    who = EntityRng(0, "taste:user", 0).integers(ids, 0, cat.n_users)
    rated = set(zip(cat.user.tolist(), cat.item.tolist()))
    assert all((u, i) in rated for u, i in zip(who.tolist(), items.tolist()))


def test_fluctuation_falls_as_one_over_sqrt_n_with_the_mock():
    w, cfg = _mock_world()
    rows = run_fluctuation(w, cfg, [400, 1600, 6400], runs=10)
    assert all(r["valid_share"] == 1.0 for r in rows)
    f = [r["fluctuation"] for r in rows]
    assert f[0] > f[1] > f[2]
    assert -0.65 < loglog_slope(rows) < -0.35
    again, _ = _mock_world()
    assert run_fluctuation(again, cfg, [400], runs=10)[0]["fluctuation"] == rows[0]["fluctuation"]


def test_fluctuation_cli(tmp_path, capsys):
    out = tmp_path / "fl"
    assert main(["experiment", "fluctuation", "--engine", "mock", "--out", str(out), "--sizes", "200,800",
                 "--runs", "3"]) == 0
    text = capsys.readouterr().out
    assert "slope" in text
    t = pq.read_table(out / "fluctuation.parquet")
    assert t.column("size").to_pylist() == [200, 800] and (out / "fluctuation.png").is_file()
    for bad in (["--sizes", "1,x"], ["--runs", "1"]):
        with pytest.raises(SystemExit) as e:
            main(["experiment", "fluctuation", "--engine", "mock", "--out", str(out), *bad])
        assert e.value.code == 2


def test_full_size_is_skipped_when_memory_is_short(tmp_path, capsys, monkeypatch):
    from socius.scenarios.recommender import fluctuation
    monkeypatch.setattr(fluctuation, "_available_bytes", lambda: 1 << 20)
    assert main(["experiment", "fluctuation", "--engine", "mock", "--out", str(tmp_path), "--sizes", "100,200",
                 "--runs", "2", "--full"]) == 0
    assert "skipping 3,200,000" in capsys.readouterr().out
    assert pq.read_table(tmp_path / "fluctuation.parquet").column("size").to_pylist() == [100, 200]


@pytest.mark.llm
@pytest.mark.slow
def test_fluctuation_with_the_local_engine(tmp_path):
    pytest.importorskip("vllm")
    cfg = RecommenderConfig()
    w = World(seed=0)
    w.insert_resource(llm_resource(SCENARIO, cfg, 0, EngineChoice("local"), tmp_path))
    try:
        rows = run_fluctuation(w, cfg, [8, 32], runs=2)
    finally:
        from socius.llm import LLM
        w.resource(LLM).close()
    assert [r["size"] for r in rows] == [8, 32]
    assert all(r["valid_share"] > 0.5 and np.isfinite(r["fluctuation"]) for r in rows)
    assert list((tmp_path / "responses").glob("*.parquet"))
