"""The social-network propagation scenario (S3) with the mock engine: graphs, spreading, metrics, CLI."""
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.ecs import RaggedArray
from socius.app.cli import main
from socius.app.config import build_config
from socius.errors import ConfigError
from socius.app.engines import EngineChoice
from socius.app.run import build_world
from socius.scenarios.social import (SCENARIO, Follows, Mood, SocialConfig, SocialEvent, SocialStats, edges,
                                     graph, prompts)


def run_world(seed=1, ticks=6, **cfg):
    w = build_world(SCENARIO, SocialConfig(**{"agents": 400, **cfg}), seed, EngineChoice("mock"))
    w.step(ticks)
    return w


def history(w):
    return w.resource(SocialStats).history


# ------------------------------------------------------------------------------------ graphs
def check_graph(g: RaggedArray, ids: np.ndarray, n: int):
    src = np.repeat(ids, g.lengths)
    assert not (g.values == src).any(), "an agent follows itself"
    assert ((g.values >= 0) & (g.values < n)).all()
    key = src * n + g.values
    assert np.unique(key).shape[0] == key.shape[0], "a follow appears twice"


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["scale_free", "small_world"]), n=st.integers(2, 3000), degree=st.integers(1, 16),
       seed=st.integers(0, 2**31), data=st.data())
def test_generators_no_self_follow_no_duplicates_and_rows_depend_only_on_the_id(kind, n, degree, seed, data):
    ids = np.arange(n, dtype=np.int64)
    full = graph.follow_graph(kind, ids, n, seed, degree=degree, gamma=2.5, rewire=0.2)
    check_graph(full, ids, n)
    most = degree + degree // 2 if kind == "scale_free" else 2 * max(1, degree // 2)
    assert (full.lengths <= min(n - 1, most)).all() and (full.lengths >= 1).all()
    sub = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=30, unique=True)), np.int64)
    part = graph.follow_graph(kind, sub, n, seed, degree=degree, gamma=2.5, rewire=0.2)  # any subset, any order
    for i, a in enumerate(sub):
        assert np.array_equal(part.row(i), full.row(a))


def test_scale_free_in_degrees_are_heavy_tailed_small_world_ones_are_not():
    n, d = 20_000, 10
    ids = np.arange(n, dtype=np.int64)
    sf = np.bincount(graph.scale_free(ids, n, d, 2.5, 3).values, minlength=n)
    sw = np.bincount(graph.small_world(ids, n, d, 0.1, 3).values, minlength=n)
    mean = sf.mean()
    assert sf.max() > 50 * mean            # hubs
    assert np.median(sf) < mean            # most agents have fewer followers than the mean
    top = np.sort(sf)[::-1]
    assert top[: n // 100].sum() > 0.1 * sf.sum()   # the top 1% hold over 10x their share (Zipf: ~0.01^(1/3))
    assert sw.max() < 3 * d and abs(np.median(sw) - d) <= 2   # concentrated around the lattice degree
    # log-log slope of the in-degree tail is near -gamma (a power law, not an exponential)
    k = np.arange(sf.max() + 1)
    ccdf = np.array([(sf >= x).mean() for x in (20, 40, 80, 160)])
    slope = np.polyfit(np.log([20, 40, 80, 160]), np.log(ccdf), 1)[0]   # CCDF ~ k^-(gamma-1)
    assert -2.2 < slope < -0.9 and k.shape[0] > 160


def test_small_world_without_rewiring_is_the_ring_lattice():
    n = 50
    g = graph.small_world(np.arange(n), n, 4, 0.0, 7)
    for i in range(n):
        assert set(g.row(i).tolist()) == {(i - 2) % n, (i - 1) % n, (i + 1) % n, (i + 2) % n}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_edge_list_file(tmp_path, fmt):
    src = np.array([0, 0, 1, 2, 2, 3, 0])
    dst = np.array([1, 2, 2, 2, 0, 0, 1])     # 2->2 is a self-follow, 0->1 twice
    t = pa.table({"src": src, "dst": dst})
    path = tmp_path / f"edges.{fmt}"
    if fmt == "csv":
        path.write_text("src,dst\n" + "".join(f"{a},{b}\n" for a, b in zip(src, dst)))
    else:
        pq.write_table(t, path)
    g = graph.follow_graph("file", np.array([3, 0, 2, 1]), 4, 0, edges_file=str(path))
    assert g.to_lists() == [[0], [1, 2], [0], [2]]
    cfg = SocialConfig(agents=4, graph="file", edges_file=str(path), seeds=1)
    s, d = edges(cfg, 0)
    assert sorted(zip(s.tolist(), d.tolist())) == [(0, 1), (0, 2), (1, 2), (2, 0), (3, 0)]
    with pytest.raises(ConfigError, match="edges_file"):
        edges(SocialConfig(agents=3, graph="file", edges_file=str(path), seeds=1), 0)   # ID 3 is out of range
    with pytest.raises(ConfigError, match="edges_file"):
        edges(SocialConfig(agents=4, graph="file", edges_file=str(tmp_path / "none.csv"), seeds=1), 0)


def test_edges_match_the_spawned_follows():
    cfg = SocialConfig(agents=300, graph="small_world", degree=6)
    src, dst = edges(cfg, 4)
    w = build_world(SCENARIO, cfg, 4, EngineChoice("mock"))
    f = w.get(Follows, "ids")
    assert np.array_equal(src, np.repeat(w.ids_of(Follows), f.lengths)) and np.array_equal(dst, f.values)


# ------------------------------------------------------------------------------------ dynamics
def test_same_seed_same_hash():
    a, b, c = run_world(seed=5, ticks=4), run_world(seed=5, ticks=4), run_world(seed=6, ticks=4)
    assert a.state_hash() == b.state_hash() != c.state_hash()


def test_awareness_spreads_monotonically_and_counts_add_up():
    w = run_world(agents=600, ticks=8)
    h = history(w)
    aware = [r["aware"] for r in h]
    assert all(x <= y for x, y in zip(aware, aware[1:]))
    assert aware[0] == w.resource(SocialEvent).seeds.__len__() and aware[-1] > aware[0] * 10
    assert sum(r["new_aware"] for r in h) == aware[-1]
    bins = len([k for k in h[0] if k.startswith("attitude_bin_")])
    for r in h:
        assert r["calm"] + r["moderate"] + r["intense"] == r["aware"]
        assert sum(r[f"attitude_bin_{i}"] for i in range(bins)) == r["aware"]
        assert r["posts"] + r["forwards"] + r["idle"] == r["acting"]
    since = w.get(Mood, "aware_since")
    assert (since >= 0).sum() == aware[-1]


def test_the_event_reaches_the_followers_of_the_seeds():
    w = run_world(agents=500, ticks=2, share=1.0, react=1.0, seeds=3)
    seeds = np.array(w.resource(SocialEvent).seeds)
    f = w.get(Follows, "ids")
    follower = np.setdiff1d(np.repeat(w.ids_of(Follows), f.lengths)[np.isin(f.values, seeds)], seeds)
    since = w.get(Mood, "aware_since")   # IDs are 0..n-1, rows in ID order
    assert follower.shape[0] > 0
    assert (since[seeds] == 0).all()
    assert (since[follower] == 1).all()   # every follower of a seed read its post at tick 1
    others = np.setdiff1d(np.arange(500), np.concatenate([seeds, follower]))
    assert (since[others] != 1).all()     # and nobody else heard of it at tick 1


def test_nothing_happens_before_the_event_tick():
    w = run_world(agents=300, ticks=4, event_tick=2, seed_selection="ids", seed_ids=[7, 11])
    h = history(w)
    assert [r["aware"] for r in h[:2]] == [0, 0] and h[2]["aware"] == 2
    assert w.resource(SocialEvent).seeds == [7, 11]


def test_a_scheduled_intervention_brings_the_news_to_more_agents():
    from socius.scenarios.social import Profile
    w = run_world(agents=600, ticks=4, graph="small_world", degree=4, seeds=1, interventions=[
        {"tick": 2, "set": "Inbox.news", "value": True, "where": "Profile.occupation == 'journalist'"}])
    journalist = w.get(Profile, "occupation") == "journalist"
    since = w.get(Mood, "aware_since")
    assert journalist.sum() > 10
    assert (since[journalist] >= 0).all() and (since[journalist] <= 2).all()
    assert history(w)[2]["new_aware"] >= (since[journalist] == 2).sum() > 0


def test_hub_seeds_have_the_most_followers():
    w = build_world(SCENARIO, SocialConfig(agents=2000, seed_selection="hubs", seeds=4), 2, EngineChoice("mock"))
    indeg = np.bincount(w.get(Follows, "ids").values, minlength=2000)
    seeds = w.resource(SocialEvent).seeds
    assert sorted(indeg[seeds]) == sorted(np.sort(indeg)[-4:])


def test_emotion_rises_then_decays():
    h = history(run_world(agents=1500, ticks=14, seeds=10))
    intense = np.nan_to_num([r["intense_share"] for r in h])
    peak = int(np.argmax(intense))
    assert intense[peak] > 0.2 and 0 < peak < len(h) - 1 and intense[-1] < intense[peak] / 2


def test_polarise_spreads_stances_further_than_converge():
    spread = {}
    for dyn in ("converge", "polarise"):
        w = run_world(agents=800, ticks=10, seeds=10, dynamics=dyn, attitude_std=0.4)
        aware = w.get(Mood, "aware_since") >= 0
        spread[dyn] = float(np.abs(w.get(Mood, "attitude")[aware]).mean())
    assert spread["polarise"] > spread["converge"] + 0.1


# ------------------------------------------------------------------------------------ prompts, CLI
def test_prompts_quote_other_agents_text_and_carry_the_summary(tmp_path):
    from socius.app.run import run_scenario
    cfg = SocialConfig(agents=300, share=1.0, seeds=5)
    run_scenario(SCENARIO, cfg, seed=3, ticks=3, out=tmp_path, engine=EngineChoice("mock"))
    t = pa.concat_tables([pq.read_table(f, columns=["tick", "prompt"]) for f in sorted((tmp_path / "responses").glob("*.parquet"))])
    prompts_ = t.column("prompt").to_pylist()
    assert all(re.search(prompts.SUMMARY_REGEX, p) for p in prompts_)
    later = [p for p, tick in zip(prompts_, t.column("tick").to_pylist()) if tick == 2]
    assert any("posted: <<<quote>>>" in p or "forwarded: <<<quote>>>" in p for p in later)
    for p in later:  # every post line quotes its text
        case = p.split("Profile: ")[-1]
        for line in case.splitlines():
            if line.startswith("- @u"):
                assert line.count("<<<quote>>>") == 1 and line.endswith("<<<end quote>>>")


def test_cli_smoke_run_writes_metrics_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "social", "--agents", "300", "--steps", "5", "--seed", "2", "--engine", "mock",
                 "--quiet", "--out", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"state_hash: [0-9a-f]+", last)
    m = pq.read_table(out / "metrics.parquet")
    assert m.num_rows == 5 and {"aware", "calm_share", "attitude_bin_0", "posts", "forwards"} <= set(m.column_names)
    assert (out / "social.png").stat().st_size > 0 and (out / "decisions.parquet").is_file()
    # resume from a snapshot reaches the same hash
    assert main(["run", "social", "--agents", "300", "--steps", "3", "--seed", "2", "--engine", "mock", "--quiet",
                 "--out", str(tmp_path / "part")]) == 0
    capsys.readouterr()
    assert main(["run", "social", "--agents", "300", "--steps", "5", "--seed", "2", "--engine", "mock", "--quiet",
                 "--resume", str(tmp_path / "part")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == last


@pytest.mark.parametrize("toml,field", [
    ('graph = "ring"', "graph"), ("degree = 0", "degree"), ("gamma = 1.5", "gamma"), ("seeds = 0", "seeds"),
    ('seed_selection = "ids"', "seed_ids"), ("seed_ids = [9999]\nseed_selection = \"ids\"", "seed_ids"),
    ('graph = "file"', "edges_file"), ("react = 1.5", "react"), ('news_emotion = "angry"', "news_emotion"),
    ("shown_posts = 9", "shown_posts"), ('dynamics = "chaos"', "dynamics"), ("bins = 0", "bins"),
    ('[[interventions]]\ntick = -1\nset = "Inbox.news"\nvalue = true', "interventions[0].tick"),
    ('[[interventions]]\ntick = 1\nset = "Nothing.here"\nvalue = 1', "interventions[0].set"),
])
def test_bad_configs_exit_2_naming_the_field(tmp_path, capsys, toml, field):
    f = tmp_path / "c.toml"
    f.write_text(toml + "\n")
    try:  # flags and config fields are checked before the run (exit), a target once the world is built (return)
        code = main(["run", "social", "--engine", "mock", "--config", str(f), "--quiet"])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    assert code == 2 and field in out.err + out.out
    if "Nothing" not in toml:  # a target is checked against the built world, the rest by the config alone
        with pytest.raises(ConfigError, match=re.escape(field)):
            build_config(SocialConfig, __import__("tomllib").loads(toml))
