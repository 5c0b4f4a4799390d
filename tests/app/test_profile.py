"""``socius profile`` and the kernel profiler: order, shares, agents, memory, JSON, trace, exit codes.

These check the report's structure — which systems are reported, in what order, with what fields,
times that are non-negative and nest (systems inside their tick) — never how fast anything ran
relative to anything else: wall-clock ratios belong to ``bench/`` (a loaded CI machine made a
2 %-headroom ratio fail once).
"""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from socius.ecs import Component, Scalar, World, system
from socius.ecs.profiler import Profiler, RssProbe
from socius.app.cli import main

# A user scenario of systems of known work (numpy passes over 1x, 4x and 16x the agents), added out of
# cost order, plus one that declares no component.
COSTED = textwrap.dedent('''
    from dataclasses import dataclass
    import numpy as np
    from socius.ecs import Component, Resource, Scalar, system
    from socius.app.registry import Scenario

    class Opinion(Component):
        value = Scalar(np.float64)

    class Scratch:
        def __init__(self, n):
            self.x = np.linspace(0.0, 1.0, 16 * n)
            self.out = np.empty_like(self.x)

    def work(ctx, factor):
        # compute-bound (a sine per element) and allocation-free, so the cost follows the element
        # count, not how much of the data the caches hold or how the allocator maps fresh memory
        s = ctx.resource(Scratch)
        m = factor * len(ctx.query(Opinion))
        float(np.sin(s.x[:m], out=s.out[:m]).sum())

    @system(reads=(Opinion,), resources=(Scratch,))
    def heavy_16x(ctx):
        work(ctx, 16)

    @system(reads=(Opinion,), resources=(Scratch,))
    def light_1x(ctx):
        work(ctx, 1)

    @system(phase="post", writes=(Opinion,), resources=(Scratch,))
    def medium_4x(ctx):
        work(ctx, 4)

    @system(phase="post")
    def no_components(ctx):
        pass

    @dataclass
    class Config:
        agents: int = 10

    def build(world, cfg):
        world.insert_resource(Scratch(cfg.agents))
        world.spawn(cfg.agents, {Opinion: {}})
        world.add_systems(heavy_16x, light_1x, medium_4x, no_components)

    COSTED = Scenario(name="costed", summary="known relative costs", config=Config, build=build)
''')
ORDER = ["heavy_16x", "light_1x", "medium_4x", "no_components"]


def profile_json(args, capsys) -> dict:
    assert main(["profile", *args, "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


@pytest.fixture
def costed(tmp_path):
    f = tmp_path / "costed_scenario.py"
    f.write_text(COSTED)
    return f


STATS = {"median", "mean", "p10", "p90", "min", "max"}


def check_stats(st: dict) -> None:
    assert set(st) == STATS
    assert 0 <= st["min"] <= st["p10"] <= st["median"] <= st["p90"] <= st["max"]
    assert st["min"] - 1e-12 <= st["mean"] <= st["max"] + 1e-12


def test_known_systems_reported_in_schedule_order_with_a_sound_structure(costed, tmp_path, capsys):
    agents, ticks = 5000, 7
    rep = profile_json([f"{costed}:COSTED", "--agents", str(agents), "--ticks", str(ticks), "--out",
                        str(tmp_path / "p")], capsys)
    rows = rep["systems"]
    assert [r["name"] for r in rows] == ORDER  # every known system, in schedule order (not cost order)
    assert [r["phase"] for r in rows] == ["update", "update", "post", "post"]
    assert [(r["reads"], r["writes"]) for r in rows] == [
        (["Opinion"], []), (["Opinion"], []), ([], ["Opinion"]), ([], [])]
    for r in rows:
        assert r["ticks"] == ticks
        check_stats(r["seconds"])
        assert r["median_s"] == r["seconds"]["median"] >= 0
        assert 0 <= r["share"] <= 1
    assert {r["name"]: r["agents"] for r in rows} == {**{n: agents for n in ORDER[:3]}, "no_components": None}
    for r in rows[:3]:
        assert r["us_per_agent"] == pytest.approx(r["median_s"] * 1e6 / agents)
    assert rows[3]["us_per_agent"] is None
    assert rep["ticks"] == ticks and rep["per_tick"]["tick"] == list(range(ticks))
    check_stats(rep["tick_s"])
    check_stats(rep["ticks_per_s"])
    tick_s = rep["per_tick"]["tick_s"]
    assert len(tick_s) == ticks and min(tick_s) > 0
    assert rep["ticks_per_s"]["median"] == pytest.approx(1 / rep["tick_s"]["median"])  # odd count: exact
    per_sys = rep["per_tick"]["systems_s"]
    assert list(per_sys) == ORDER and all(len(v) == ticks and min(v) >= 0 for v in per_sys.values())
    for t in range(ticks):  # the systems run inside their tick
        assert sum(per_sys[n][t] for n in ORDER) <= tick_s[t] + 1e-9
    assert 0 <= rep["kernel"]["share"] <= 1 and rep["kernel"]["median_s"] >= 0
    assert rep["ranks"][0]["rank"] == 0 and rep["slowest_rank"] == 0
    comp = {c["name"]: c for c in rep["components"]}
    assert comp["Opinion"]["entities"] == agents and comp["Opinion"]["bytes_per_agent"] == 16.0  # id + float64
    saved = json.loads((tmp_path / "p" / "profile.json").read_text())
    assert [r["name"] for r in saved["systems"]] == ORDER and saved["ticks"] == ticks


def test_user_file_profiles_without_install_and_prints_tables(costed, tmp_path, capsys):
    assert "costed_scenario" not in sys.modules
    out_dir = tmp_path / "run"
    assert main(["profile", str(costed) + ":COSTED", "--agents", "2000", "--ticks", "3", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "systems in schedule order" in out and "component memory" in out
    positions = [out.index(n) for n in ORDER]
    assert positions == sorted(positions)
    assert (out_dir / "profile.txt").read_text().count("heavy_16x") >= 1
    assert json.loads((out_dir / "profile.json").read_text())["scenario"] == "costed"


def test_builtin_json_systems_in_schedule_order_and_default_run_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rep = profile_json(["boltzmann", "--agents", "3000", "--ticks", "4", "--seed", "3"], capsys)
    assert [r["name"] for r in rep["systems"]] == ["move_and_give", "record_gini"]
    assert [r["phase"] for r in rep["systems"]] == ["update", "post"]
    assert rep["entities"] == 3000 and rep["seed"] == 3 and rep["build_s"] > 0
    assert all(r["agents"] == 3000 for r in rep["systems"])
    assert rep["per_tick"]["tick"] == [0, 1, 2, 3]
    runs = list((tmp_path / "runs").glob("profile-boltzmann-*/profile.json"))
    assert len(runs) == 1 and json.loads(runs[0].read_text())["ticks"] == 4


def test_trace_is_valid_chrome_trace_with_systems_nested_in_ticks(tmp_path, capsys):
    trace = tmp_path / "trace.json"
    profile_json(["boltzmann", "--agents", "2000", "--ticks", "5", "--trace", str(trace), "--out",
                  str(tmp_path / "p")], capsys)
    data = json.loads(trace.read_text())
    events = data["traceEvents"]
    xs = [e for e in events if e["ph"] == "X"]
    assert all(isinstance(e["ts"], (int, float)) and e["dur"] >= 0 and e["pid"] == 1 and e["tid"] == 1 for e in xs)
    ticks = [e for e in xs if e["cat"] == "tick"]
    systems = [e for e in xs if e["cat"] == "system"]
    assert len(ticks) == 5 and len(systems) == 10 and [e["name"] for e in xs if e["cat"] == "build"] == ["build"]
    for t in ticks:
        inside = [e for e in systems if t["ts"] <= e["ts"] and e["ts"] + e["dur"] <= t["ts"] + t["dur"] + 1e-3]
        assert [e["name"] for e in sorted(inside, key=lambda e: e["ts"])] == ["move_and_give", "record_gini"]
    assert any(e["ph"] == "M" and e["name"] == "process_name" for e in events)


def test_llm_scenario_reports_engine_vs_own_time_and_outcomes(tmp_path, capsys):
    rep = profile_json(["guess", "--agents", "400", "--ticks", "2", "--engine", "mock", "--out", str(tmp_path / "g")],
                       capsys)
    by = {r["name"]: r for r in rep["systems"]}
    assert "llm" not in by["score_round"]
    llm = by["report_numbers"]["llm"]
    assert llm["decisions"] == ["guess"] and llm["ticks"] == 2
    t = llm["totals"]
    assert t["agents"] == 800 and t["ok"] + t["extracted"] + t["fallback"] + t["failed"] == 800
    assert 0 < t["requests"] <= t["completions"] and t["output_tokens"] > 0
    m = llm["median_s"]
    assert all(v >= 0 for v in m.values())
    assert m["ours"] == pytest.approx(m["wall"] - m["engine"], abs=1e-9)  # two ticks: medians are means
    assert m["wall"] >= m["engine"]  # the engine's time is part of the system's
    assert (tmp_path / "g" / "responses").is_dir()  # logged as in a real run


@pytest.mark.parametrize("name, says", [
    ("no-such-scenario", "unknown scenario"),
    ("missing/file.py", "no such scenario file"),
    ("socius.no_such_module:SCENARIO", "cannot import"),
])
def test_bad_scenario_names_exit_2_with_a_clear_message(name, says, capsys):
    with pytest.raises(SystemExit) as e:
        main(["profile", name, "--ticks", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "SCENARIO" in err and says in err and "Traceback" not in err


@pytest.mark.parametrize("args, flag", [
    (["boltzmann", "--ticks", "0"], "--ticks"),
    (["boltzmann", "--agents", "x"], "--agents"),
    (["boltzmann", "--engine", "mock"], "--engine"),
    (["boltzmann", "--trace", "/no/such/dir/t.json"], "--trace"),
])
def test_bad_flags_exit_2_naming_the_flag(args, flag, capsys):
    with pytest.raises(SystemExit) as e:
        main(["profile", *args])
    assert e.value.code == 2 and flag in capsys.readouterr().err


def test_entry_point_bad_name_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "socius.app", "profile", "nope"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and "unknown scenario 'nope'" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ the kernel profiler
class A(Component):
    v = Scalar(np.int64)


class B(Component):
    v = Scalar(np.int64)


def test_agents_processed_counts_entities_with_all_declared_components():
    w = World()
    w.spawn(100, {A: {}})
    both = w.spawn(40, {A: {}, B: {}})

    @system(reads=(A,), writes=(B,))
    def ab(ctx):
        pass

    @system(reads=(A,))
    def a_only(ctx):
        pass

    @system(phase="post", reads=(B,))
    def drop_some(ctx):
        if ctx.tick == 1:
            ctx.commands.remove(both[:10], B)

    w.add_systems(ab, a_only, drop_some)
    with Profiler(w, memory=False) as prof:
        prof.step(3)
    assert prof.systems["ab"].agents == [40, 40, 30]  # recounted after the structural change
    assert prof.systems["a_only"].agents == [140, 140, 140]
    assert prof.order() == ["ab", "a_only", "drop_some"]
    assert w.schedule.hooks == []  # detached


@pytest.mark.skipif(not RssProbe().available, reason="needs Linux /proc/self/clear_refs")
def test_memory_growth_sees_a_large_temporary_and_not_a_small_one():
    w = World()
    w.spawn(10, {A: {}})

    @system(reads=(A,))
    def big(ctx):
        x = np.ones(12_000_000)  # 96 MB, touched, then freed
        assert x[-1] == 1.0

    @system(reads=(A,))
    def small(ctx):
        np.ones(1000).sum()

    w.add_systems(big, small)
    with Profiler(w) as prof:
        prof.step(2)
    s = {r["name"]: r for r in prof.summary()["systems"]}
    assert s["big"]["peak_mem_growth_bytes"] > 80e6
    assert s["small"]["peak_mem_growth_bytes"] < 8e6
    assert prof.peak_rss_bytes >= 80e6
