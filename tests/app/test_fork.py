"""``socius fork``: a branch from a snapshot tick shares the past exactly and replays on its own."""
from __future__ import annotations

import json
import shutil

import pytest

from socius.app import run as runner
from socius.app.cli import main
from socius.app.config import build_config
from socius.app.engines import EngineChoice
from socius.app.fork import fork_run, tick_snapshots
from socius.app.registry import get_scenario
from socius.errors import ConfigError


def _guess(out, ticks=6, replay=None, seed=4):
    sc = get_scenario("guess")
    return runner.run_scenario(sc, build_config(sc.config, {"agents": 24}), seed=seed, ticks=ticks, out=out,
                               snapshot_every=2, engine=EngineChoice("mock", replay=replay))


@pytest.fixture
def parent(tmp_path):
    res = _guess(tmp_path / "parent")
    return tmp_path / "parent", res.state_hash


def test_every_snapshot_tick_is_kept(parent):
    run_dir, _ = parent
    assert list(tick_snapshots(run_dir)) == [2, 4, 6]


@pytest.mark.parametrize("at", [2, 4])
def test_a_fork_with_no_changes_reaches_the_parents_hash(tmp_path, parent, at):
    run_dir, final = parent
    res = fork_run(run_dir, at, tmp_path / "fork")
    assert res.state_hash == final and res.ticks_run == 6 - at
    info = json.loads((tmp_path / "fork" / "run.json").read_text())
    from socius.mpi.snapshot import snapshot_info
    assert info["parent"]["tick"] == at and info["parent"]["run_dir"] == str(run_dir.resolve())
    assert info["parent"]["state_hash"] == snapshot_info(run_dir / "snapshots" / f"tick-{at:08d}.socius")["state_hash"]
    assert info["state_hash"] == final
    logged = sorted(p.name for p in (tmp_path / "fork" / "responses").glob("tick-*.parquet"))
    assert logged == sorted(p.name for p in (run_dir / "responses").glob("tick-*.parquet"))
    # the branch's own log (copied past + its future) replays it from tick 0
    assert _guess(tmp_path / "replay", replay=tmp_path / "fork").state_hash == final


def test_the_cli_forks_and_bad_ticks_exit_2(tmp_path, parent, capsys):
    run_dir, final = parent
    assert main(["fork", str(run_dir), "--at", "4", "--out", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"state_hash: {final}"
    with pytest.raises(SystemExit) as e:
        main(["fork", str(run_dir), "--at", "3", "--out", str(tmp_path / "c")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "no snapshot at tick 3" in err and "ticks: 2, 4, 6" in err
    with pytest.raises(ConfigError, match=r"no snapshot at tick 3 .*\(snapshots at ticks: 2, 4, 6;"):
        fork_run(run_dir, 3, tmp_path / "c")
    with pytest.raises(ConfigError, match="not a run directory"):
        fork_run(tmp_path / "nothing", 2, tmp_path / "d")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        fork_run(run_dir, 2, tmp_path / "b")
    with pytest.raises(ConfigError, match="--steps: 1 ticks in total is before the fork tick 2"):
        fork_run(run_dir, 2, tmp_path / "e", steps=1)


def test_only_the_last_snapshot_names_what_exists(tmp_path):
    sc = get_scenario("guess")
    runner.run_scenario(sc, build_config(sc.config, {"agents": 8}), seed=1, ticks=3, out=tmp_path / "p",
                        engine=EngineChoice("mock"))
    shutil.rmtree(tmp_path / "p" / "snapshots", ignore_errors=True)  # a run with no kept snapshots
    with pytest.raises(ConfigError, match=r"snapshots at ticks: 3;"):
        fork_run(tmp_path / "p", 1, tmp_path / "f")


def test_overrides_switch_only_the_branch(tmp_path, parent):
    run_dir, final = parent
    adapter = tmp_path / "kind-v1"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    over = {"temperature": 0.0, "adapter_switches": [{"tick": 4, "adapter": "kind", "path": str(adapter),
                                                      "where": "Team.group == -1"}]}
    res = fork_run(run_dir, 2, tmp_path / "treated", overrides=over)
    assert res.state_hash != final
    from socius.components import ModelChoice
    from socius.llm import DecisionStats
    assert (res.world.query(ModelChoice)[ModelChoice].adapter == "kind").all()
    rows = res.world.resource(DecisionStats).rows
    assert [r["tick"] for r in rows] == [2, 3, 4, 5] and all(r["failed"] == 0 for r in rows)
    info = json.loads((tmp_path / "treated" / "run.json").read_text())
    assert info["parent"]["adapter_switches"][0]["adapter"] == "kind"
    assert _guess(tmp_path / "replay", replay=tmp_path / "treated").state_hash == res.state_hash
    with pytest.raises(ConfigError, match=r"adapter_switches\[0\].tick: 1 is before the fork tick 2"):
        fork_run(run_dir, 2, tmp_path / "x", overrides={"adapter_switches": [{"tick": 1, "adapter": "",
                                                                               "path": ""}]})
    with pytest.raises(ConfigError, match="--config: colour: unknown field"):
        fork_run(run_dir, 2, tmp_path / "y", overrides={"colour": 1})
