"""The CI budget check of the main job's first round (``bench/local_budget.py``) on made-up run directories."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from socius.bench.local_budget import FirstRound, check_budget, first_round, main, reference_s_per_completion


def write_run(folder, rows, ranks=None):
    """A run directory with ``decisions.parquet`` rows ``(tick, decision, engine_s, requests, completions)``."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: [r[i] for r in rows] for i, k in
                      enumerate(("tick", "decision", "engine_s", "requests", "completions"))})
    if ranks is None:
        pq.write_table(table, folder / "decisions.parquet")
    else:
        (folder / "decisions").mkdir()
        for k in range(ranks):
            pq.write_table(table, folder / "decisions" / f"rank-{k:05d}.parquet")
    return folder


def bench_lines(*per_completion, dtype="float32"):
    return [json.dumps({"bench": "local_main_job", "dtype": dtype, "s_per_completion": v}) for v in per_completion]


def test_first_round_sums_the_first_ticks_rows(tmp_path):
    run = write_run(tmp_path / "run", [(1, "guess", 40.0, 161, 300), (1, "guess:extract", 2.0, 5, 5),
                                       (2, "guess", 30.0, 150, 300), (0, "other", 0.0, 0, 0)])
    assert first_round(run) == FirstRound(0, 0.0, 0, 0)
    run2 = write_run(tmp_path / "run2", [(2, "guess", 30.0, 150, 300), (1, "guess", 40.0, 161, 300),
                                         (1, "guess:extract", 2.0, 5, 5)])
    assert first_round(run2) == FirstRound(1, 42.0, 166, 305)


def test_first_round_over_ranks(tmp_path):
    run = write_run(tmp_path / "run", [(0, "guess", 10.0, 50, 100)], ranks=2)
    assert first_round(run) == FirstRound(0, 20.0, 100, 200)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no decisions.parquet"):
        first_round(tmp_path)


def test_reference_is_the_fastest_dtype():
    lines = [*bench_lines(0.8, dtype="bfloat16"), *bench_lines(0.1), '{"bench": "local_engine", "batch": 64}']
    assert reference_s_per_completion(lines) == 0.1
    assert reference_s_per_completion(lines, "bfloat16") == 0.8
    with pytest.raises(ValueError, match="no local_main_job"):
        reference_s_per_completion(lines, "float16")


@given(st.floats(0.01, 1000), st.integers(1, 10_000), st.floats(1e-4, 10), st.floats(0.5, 20))
def test_budget_is_a_multiple_of_the_bench(engine_s, completions, per, budget):
    ok, msg = check_budget(FirstRound(0, engine_s, completions, completions), per, budget)
    assert ok == (engine_s <= budget * completions * per)
    assert ("ok" if ok else "OVER BUDGET") in msg


def test_a_slow_default_dtype_fails(tmp_path):
    """The regression of issue 17: bf16 on an AVX2-only CPU, ~10× the float32 bench figure."""
    run = write_run(tmp_path / "run", [(0, "guess", 396.0, 161, 300)])
    bench = tmp_path / "bench.jsonl"
    bench.write_text("\n".join(bench_lines(0.13)) + "\n")
    assert main([str(run), "--bench", str(bench), "--budget", "3"]) == 1
    fixed = write_run(tmp_path / "fixed", [(0, "guess", 45.0, 161, 300)])
    assert main([str(fixed), "--bench", str(bench), "--budget", "3"]) == 0


def test_bad_input_exits_2(tmp_path, capsys):
    bench = tmp_path / "bench.jsonl"
    bench.write_text("")
    assert main([str(tmp_path), "--bench", str(bench)]) == 2
    assert "local_budget: error:" in capsys.readouterr().err


def test_round_figures_of_a_run(tmp_path):
    from socius.bench.local_engine import _round_figures

    rows = {"tick": [0, 0, 1, 2], "engine_s": [40.0, 2.0, 30.0, 35.0], "render_s": [1.0, 0.0, 1.0, 1.0],
            "requests": [161, 5, 150, 155], "completions": [300, 5, 300, 300], "output_tokens": [2000, 10, 1900, 1950],
            "wall_s": [41.0, 2.5, 30.5, 35.5]}                # the pipeline times the whole decision
    pq.write_table(pa.table(rows), tmp_path / "decisions.parquet")
    f = _round_figures(tmp_path)
    assert f["round_s"] == [43.5, 30.5, 35.5] and f["s_per_round"] == 35.5
    assert f["completions_per_round"] == [305, 300, 300]
    assert f["completions_per_min"] == round(905 / 107.0 * 60, 1)
    assert f["s_per_completion"] == round(107.0 / 905, 4)
    mpi = tmp_path / "mpi"                                  # the same rows over two ranks' files: the same figures
    (mpi / "decisions").mkdir(parents=True)
    table = pa.table(rows)
    pq.write_table(table.slice(0, 1), mpi / "decisions" / "rank-00000.parquet")
    pq.write_table(table.slice(1), mpi / "decisions" / "rank-00001.parquet")
    assert _round_figures(mpi) == f


def test_isa_cap_makes_torch_report_avx2(tmp_path):
    """The bench's AVX2 emulation: in a fresh interpreter (as vLLM's spawned engine processes are), torch's
    CPU checks that vLLM reads answer False and torch's kernels run at AVX2."""
    import os
    import subprocess
    import sys

    pytest.importorskip("torch")
    from socius.bench.local_engine import isa_cap_env

    env = {**os.environ, **isa_cap_env("avx2", tmp_path)}
    code = ("import torch; print(torch.cpu._is_avx512_supported(), torch.cpu._is_avx512_bf16_supported(), "
            "torch.cpu._is_amx_tile_supported(), torch.backends.cpu.get_cpu_capability())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False", "AVX2"]
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and (tmp_path / "sitecustomize.py").is_file()
    assert isa_cap_env(None, tmp_path) == {}
