"""The runner's MPI plumbing that needs no second process: device pinning, serial scenarios, snapshots."""
import numpy as np
import pytest

from socius.mpi import run_ranks
from socius.app.config import build_config
from socius.app.engines import pin_device
from socius.app.registry import get_scenario
from socius.app.run import SerialScenarioError, build_world, find_snapshot, run_scenario


class FakeRanks:
    def __init__(self, local_rank, local_size):
        self.local_rank, self.local_size = local_rank, local_size

    def device_index(self, n):
        return self.local_rank % n


@pytest.mark.parametrize("local_rank,expect", [(0, "4"), (1, "5"), (2, "6"), (3, "4")])
def test_each_rank_drives_the_gpu_of_its_local_rank(monkeypatch, local_rank, expect):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    pin_device(FakeRanks(local_rank, 4))
    import os
    assert os.environ["CUDA_VISIBLE_DEVICES"] == expect


def test_one_rank_per_node_keeps_the_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    pin_device(FakeRanks(0, 1))
    import os
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_a_serial_scenario_refuses_several_ranks():
    sc = get_scenario("boltzmann")
    cfg = build_config(sc.config, {"agents": 10})

    def job(ctx):
        with pytest.raises(SerialScenarioError, match="run it on one rank"):
            build_world(sc, cfg, 0, ranks=ctx)
        return True

    assert run_ranks(2, job) == [True, True]


def test_resume_picks_the_newest_snapshot(tmp_path):
    sc = get_scenario("guess")
    cfg = build_config(sc.config, {"agents": 12})
    from socius.app.engines import EngineChoice
    run_scenario(sc, cfg, seed=1, ticks=1, out=tmp_path, engine=EngineChoice("mock"))
    assert find_snapshot(tmp_path).name == "snapshot.socius"

    def job(ctx):
        return run_scenario(sc, cfg, seed=1, ticks=2, out=tmp_path, engine=EngineChoice("mock"), ranks=ctx,
                            resume=find_snapshot(tmp_path)).state_hash

    hashes = run_ranks(2, job)
    assert find_snapshot(tmp_path).name == "snapshot.ranks"  # tick 2 beats the one-rank file's tick 1
    straight = run_scenario(sc, cfg, seed=1, ticks=2, out=None, engine=EngineChoice("mock")).state_hash
    assert hashes == [straight, straight]
    assert find_snapshot(tmp_path / "nothing-here") is None


@pytest.mark.parametrize("name,values,files", [
    ("jobs", {"agents": 90}, ["hires.parquet", "openings.parquet", "metrics.parquet"]),
    ("discussion", {"agents": 22, "room_size": 4}, ["utterances.parquet", "stances.parquet"]),
    ("guess", {"agents": 30}, ["winners.parquet", "metrics.parquet"]),
])
def test_reports_on_two_ranks_hold_every_agent(tmp_path, name, values, files):
    import pyarrow.parquet as pq
    from socius.app.engines import EngineChoice
    sc = get_scenario(name)
    cfg = build_config(sc.config, values)
    run_scenario(sc, cfg, seed=3, ticks=5, out=tmp_path / "one", engine=EngineChoice("mock"))

    def job(ctx):
        return run_scenario(sc, cfg, seed=3, ticks=5, out=tmp_path / "two", engine=EngineChoice("mock"),
                            ranks=ctx).state_hash

    run_ranks(2, job)
    for f in files:
        one, two = pq.read_table(tmp_path / "one" / f), pq.read_table(tmp_path / "two" / f)
        keep = [c for c in one.column_names if not c.endswith("_s") and c not in ("calls", "requests")]
        assert one.num_rows > 0, f
        for c in keep:
            a, b = one.column(c).to_numpy(zero_copy_only=False), two.column(c).to_numpy(zero_copy_only=False)
            same = np.array_equal(a, b, equal_nan=True) if a.dtype.kind == "f" else (a == b).all()
            assert a.shape == b.shape and same, (f, c)
