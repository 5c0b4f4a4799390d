"""Run discovery and status, the `socius serve` command's bad input, and the real server on a socket."""
from __future__ import annotations

import shutil

import httpx
import pytest

from socius.app.cli import main
from socius.web.runs import RunFiles, discover_runs
from socius.web.server import DashboardThread, is_loopback, url


def test_discover_a_folder_of_runs_with_unique_names(mock_run, tmp_path):
    shutil.copytree(mock_run, tmp_path / "a" / "social")
    shutil.copytree(mock_run, tmp_path / "b" / "social")
    runs = discover_runs([tmp_path / "a", tmp_path / "b" / "social"])
    assert list(runs) == ["social", "social-2"]
    with pytest.raises(Exception, match="holds no run"):
        discover_runs([tmp_path])


def test_a_run_without_run_json_is_running_and_its_tick_comes_from_its_files(run_dir):
    (run_dir / "run.json").unlink()
    (run_dir / "metrics.parquet").unlink()
    for f in run_dir.rglob("*"):  # written just now (the session's run may be minutes old)
        f.touch()
    info = RunFiles(run_dir).info()
    assert info["status"] == "running" and info["tick"] == 3 and info["scenario"] is None
    assert RunFiles(run_dir).metrics() is None


def test_version_changes_when_a_file_changes(run_dir):
    src = RunFiles(run_dir)
    before = src.version()
    (run_dir / "run.json").write_text((run_dir / "run.json").read_text() + "\n")
    assert src.version() != before


@pytest.mark.parametrize("argv, message", [
    (["serve", "/nonexistent-run-dir"], "is not a directory"),
    (["serve", "RUN", "--port", "70000"], "--port"),
    (["serve", "RUN", "--token", "short"], "--token"),
])
def test_serve_bad_input_is_a_usage_error(argv, message, run_dir, capsys):
    argv = [str(run_dir) if a == "RUN" else a for a in argv]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_the_server_on_a_socket_needs_the_token(run_dir):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
    assert url("0.0.0.0", 8000, "t").startswith("http://127.0.0.1:8000/?token=")
    with DashboardThread(discover_runs([run_dir])) as dash:
        base = f"http://127.0.0.1:{dash.port}"
        assert httpx.get(f"{base}/api/runs").status_code == 401
        with httpx.Client(follow_redirects=True) as c:
            assert c.get(dash.url).status_code == 200  # the one-time URL, then the page
            runs = c.get(f"{base}/api/runs").json()
        assert runs[0]["name"] == "social" and runs[0]["tick"] == 3


def test_own_time_is_the_pipelines_our_s_and_older_files_keep_the_stage_sum():
    """``own_s`` per tick: ``our_s`` where the file has it (the stage sum counts the extraction's engine
    wait and, before ``our_s``, its dedup and log twice), the stage sum for rows without it."""
    import numpy as np
    import pyarrow as pa
    from socius.web.runs import OWN_STAGES, aggregate_decisions
    rng = np.random.default_rng(3)
    n = 12
    tick = np.repeat(np.arange(4), 3)
    stages = {k: rng.random(n) for k in OWN_STAGES}
    stage_sum = np.sum([stages[k] for k in OWN_STAGES], axis=0)
    our = rng.random(n)
    per_tick = lambda v: np.array([v[tick == k].sum() for k in range(4)])  # noqa: E731
    old = aggregate_decisions(pa.table({"tick": tick, **stages, "engine_s": rng.random(n)}))
    np.testing.assert_allclose(old.column("own_s").to_numpy(), per_tick(stage_sum))
    new = aggregate_decisions(pa.table({"tick": tick, **stages, "our_s": our}))
    np.testing.assert_allclose(new.column("own_s").to_numpy(), per_tick(our))
    mixed = pa.table({"tick": tick, **stages, "our_s": pa.array(np.where(tick < 2, np.nan, our), mask=tick < 2)})
    np.testing.assert_allclose(aggregate_decisions(mixed).column("own_s").to_numpy(),
                               per_tick(np.where(tick < 2, stage_sum, our)))
