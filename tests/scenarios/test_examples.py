"""The README's "write your own scenario" example: under 60 lines, the same as in the README, and it works."""
from pathlib import Path

import numpy as np

from socius.mpi import run_ranks
from socius.app.cli import main
from socius.app.config import build_config
from socius.app.registry import get_scenario
from socius.app.engines import EngineChoice
from socius.app.run import run_scenario

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "scenarios" / "examples" / "rumour.py"


def test_example_is_short_and_is_the_one_in_the_readme():
    code = EXAMPLE.read_text()
    assert len(code.splitlines()) < 60
    assert "```python\n" + code + "```" in (ROOT / "README.md").read_text()


def test_example_runs_from_its_file_and_the_rumour_spreads(tmp_path, capsys):
    assert main(["run", str(EXAMPLE), "--agents", "3000", "--steps", "8", "--engine", "mock", "--seed", "2",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("state_hash: ")
    import pyarrow.parquet as pq
    aware = pq.read_table(tmp_path / "run" / "metrics.parquet").column("aware").to_numpy()
    assert np.all(np.diff(aware) >= 0) and aware[-1] > 3 * aware[0]


def test_example_gives_the_same_hash_on_two_ranks():
    sc = get_scenario(str(EXAMPLE))
    cfg = build_config(sc.config, {"agents": 500})

    def job(ctx):
        return run_scenario(sc, cfg, seed=4, ticks=5, out=None, engine=EngineChoice("mock"), ranks=ctx).state_hash

    one = run_scenario(sc, cfg, seed=4, ticks=5, out=None, engine=EngineChoice("mock")).state_hash
    assert run_ranks(2, job) == [one, one]
