"""Sizes, steps and seeds for every benchmark: ``small`` for CI smoke runs, ``large`` for real numbers.

Pick with ``--size small|large`` (default ``large``); each bench reads its own entry.
"""
from __future__ import annotations

CONFIGURATIONS = {
    "boltzmann": {
        "small": {"agents": [1_000, 10_000], "steps": 10, "seeds": [1], "mesa_max_steps": 5,
                  "match_agents": 1_000, "match_steps": 10, "match_seeds": 10},
        "large": {"agents": [1_000, 10_000, 100_000, 1_000_000], "steps": 20, "seeds": [1],
                  "mesa_max_steps": 5, "match_agents": 10_000, "match_steps": 10, "match_seeds": 20},
    },
    "llm_tick": {
        "small": {"agents": [10_000], "ticks": 3},
        "large": {"agents": [10_000, 100_000, 1_000_000], "ticks": 3},
    },
    "scenarios": {
        "small": {"agents": [1_000, 10_000], "ticks": 1, "warmup": {"*": 1, "social": 3}},
        "large": {"agents": [10_000, 100_000], "ticks": 3, "warmup": {"*": 1, "social": 3}},
    },
    "recommender": {
        "small": {"agents": [2_000], "ticks": 2, "warmup": 2},
        "large": {"agents": [10_000, 100_000], "ticks": 3, "warmup": 3},
    },
    "mpi_scaling": {
        "small": {"ranks": [1, 2], "strong_agents": 20_000, "weak_agents_per_rank": 10_000, "ticks": 3,
                  "warmup": 1, "repeat": 1},
        "large": {"ranks": [1, 2], "strong_agents": 200_000, "weak_agents_per_rank": 100_000, "ticks": 8,
                  "warmup": 2, "repeat": 3},
    },
    "dummy_latency": {
        "small": {"agents": 10_000, "per_request_s": 1.0, "openai_agents": 1_000, "openai_concurrency": 500},
        "large": {"agents": 1_000_000, "per_request_s": 1.0, "openai_agents": 10_000, "openai_concurrency": 1000},
    },
}


def get(bench: str, size: str) -> dict:
    try:
        return CONFIGURATIONS[bench][size]
    except KeyError:
        raise SystemExit(f"--size: unknown size {size!r} for {bench} (choose from {', '.join(CONFIGURATIONS[bench])})")
