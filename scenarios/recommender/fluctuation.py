"""GenSim's fluctuation experiment (§2.2, Fig. 2a): how much a simulated rating distribution varies with n.

For each size ``n`` (3.2k, 32k, 320k; 3.2M with ``--full``): take ``n``
user–item pairs — ``n`` simulated users, each standing for a user of the
catalogue drawn at random (the scenario's ``taste = "data"`` mapping, so it
carries that user's genre taste) together with one movie that user rated —
and ask each pair's rating ``runs`` times (10) through
:func:`~socius.llm.decide` with the scenario's rating prompt
(:data:`.prompts.RATE`), every run with other seeds (run ``r`` is tick ``r``:
the engine's per-request seeds and the mock's draws change with it). Run
``i`` gives the rating distribution ``p_i`` (shares of 0.5, 1.0, …, 5.0 among
its valid ratings); the fluctuation of size ``n`` is

    F(n) = Σ_r  std_i p_i(r)        (sample standard deviation over the runs, ddof = 1)

For independent ratings, ``std p(r) ≈ sqrt(p(r)(1 − p(r)) / n)``, so ``F``
falls as ``1/√n`` — the paper's point that small simulations are not
reproducible. Output: a table, ``fluctuation.parquet`` (one row per size:
``F``, the per-rating std and mean shares, valid replies, seconds) and
``fluctuation.png`` (log–log, with a ``1/√n`` reference line).

Command line (:data:`FLUCTUATION`, a command the recommender scenario adds):
``socius experiment fluctuation --engine mock|local|vllm|openai --out DIR
[--sizes 3200,32000,320000] [--runs 10] [--seed S] [--data DIR] [--full]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from socius.app.registry import Command
from socius.app.report import pyplot
from socius.ecs import World
from socius.ecs.rng import EntityRng
from socius.errors import ConfigError
from socius.llm import decide

from .data import Catalogue, load_catalogue
from .prompts import item_labels, rate_decision, snap
from .users import taste_phrases, user_columns

DEFAULT_SIZES = (3_200, 32_000, 320_000)
FULL_SIZE = 3_200_000
CHUNK = 65_536               # pairs per decide() call
BYTES_PER_PAIR = 4_000       # rough peak memory per pair of a chunk (prompt, reply, columns)


def sample_pairs(cat: Catalogue, ids: np.ndarray, seed: int) -> np.ndarray:
    """``[n] int64`` item of each pair: a movie rated by the data user that entity ``ids[j]`` stands for."""
    who = EntityRng(seed, "taste:user", 0).integers(ids, 0, cat.n_users)  # the scenario's own mapping
    order = np.argsort(cat.user, kind="stable")
    starts = np.searchsorted(cat.user[order], np.arange(cat.n_users + 1))
    count = starts[who + 1] - starts[who]
    pick = EntityRng(seed, "fluctuation:item", 0).integers(ids, 0, np.maximum(count, 1))
    return cat.item[order][starts[who] + pick].astype(np.int64)


def _fields(cfg, cat: Catalogue, labels: np.ndarray, ids: np.ndarray, items: np.ndarray, seed: int) -> dict:
    cols = user_columns(cfg.population, "data", cfg.taste_concentration, cat, ids, seed)
    likes, dislikes = taste_phrases(cols["taste"])
    return {"name": cols["name"], "age": cols["age"], "gender": cols["gender"], "occupation": cols["occupation"],
            "likes": likes, "dislikes": dislikes, "movie": labels[items]}


def fluctuation_of(shares: np.ndarray) -> tuple[float, np.ndarray]:
    """``(F, std [10])`` from ``shares [runs, 10]``: the sum over ratings of the std across runs (ddof 1)."""
    std = shares.std(axis=0, ddof=1) if shares.shape[0] > 1 else np.zeros(shares.shape[1])
    return float(std.sum()), std


def run_fluctuation(world: World, cfg, sizes, runs: int = 10, temperature: float = 0.7, progress=None,
                    chunk: int = CHUNK) -> list[dict]:
    """One row per size (see the module docstring). ``world`` holds the LLM resource; its seed keys everything."""
    if runs < 2:
        raise ValueError(f"runs: need at least 2 runs for a standard deviation, got {runs}")
    cat = load_catalogue(cfg.data)
    if cat.n_users == 0:
        raise ValueError("the catalogue has no ratings to sample user-item pairs from")
    labels = item_labels(cat)
    base = rate_decision(temperature)
    rows, first = [], 0
    for n in sizes:
        t0 = time.perf_counter()
        ids = np.arange(first, first + n, dtype=np.int64)  # every size its own simulated users
        first += n
        items = sample_pairs(cat, ids, world.seed)
        counts = np.zeros((runs, 10), np.int64)
        invalid = np.zeros(runs, np.int64)
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            fields = _fields(cfg, cat, labels, ids[lo:hi], items[lo:hi], world.seed)
            d = dataclasses.replace(base, name=f"rate-n{n}-c{lo // chunk}")
            for r in range(runs):
                world.tick = r
                res = decide(world, d, ids[lo:hi], fields)
                x = res.values["rating"]
                ok = np.isfinite(x)
                invalid[r] += int((~ok).sum())
                counts[r] += np.bincount((snap(x[ok]) * 2).astype(np.int64) - 1, minlength=10)
                if progress is not None:
                    progress(n, r, hi)
        valid = counts.sum(axis=1)
        shares = counts / np.maximum(valid, 1)[:, None]
        f, std = fluctuation_of(shares)
        rows.append({"size": int(n), "runs": int(runs), "fluctuation": f,
                     "valid_share": float(valid.sum() / (n * runs)), "mean_rating": float(
                         (shares * (np.arange(1, 11) / 2)).sum(axis=1).mean()), "seconds": time.perf_counter() - t0,
                     **{f"std_r{k * 5:02d}": float(std[k - 1]) for k in range(1, 11)},
                     **{f"share_r{k * 5:02d}": float(shares[:, k - 1].mean()) for k in range(1, 11)}})
    world.tick = 0
    return rows


def loglog_slope(rows: list[dict]) -> float:
    """Least-squares slope of log F against log n (−0.5 expected)."""
    x = np.log([r["size"] for r in rows])
    y = np.log([r["fluctuation"] for r in rows])
    return float(np.polyfit(x, y, 1)[0])


def write_outputs(rows: list[dict], out: Path, title: str) -> None:
    """``fluctuation.parquet`` and ``fluctuation.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".fluctuation.parquet.tmp"
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(out / "fluctuation.parquet")
    plt = pyplot()
    if plt is None:
        return
    n = np.array([r["size"] for r in rows], float)
    f = np.array([r["fluctuation"] for r in rows])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(n, f, "o-", label="simulated")
    ref = f[0] * np.sqrt(n[0] / n)
    ax.loglog(n, ref, "k--", lw=1, label=r"$\propto 1/\sqrt{n}$")
    ax.set_xlabel("user–item pairs n")
    ax.set_ylabel(r"fluctuation $\sum_r \sigma(p_1(r), \dots, p_{10}(r))$")
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "fluctuation.png", dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- command line
def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError(f"--sizes needs integers >= 2, got {text!r}")
    return sizes


def add_arguments(f: argparse.ArgumentParser) -> None:
    """The flags of ``socius experiment fluctuation`` (the command line calls it with the command's parser)."""
    from socius.llm.engines.factory import ENGINES

    f.add_argument("--engine", choices=ENGINES, required=True, help="LLM engine that rates the pairs")
    f.add_argument("--engine-config", type=Path, help="TOML or JSON table of engine options")
    f.add_argument("--out", type=Path, required=True, metavar="DIR", help="where fluctuation.parquet/.png go")
    f.add_argument("--sizes", type=_sizes, default=list(DEFAULT_SIZES), metavar="N,N,...",
                   help="numbers of user-item pairs (default 3200,32000,320000)")
    f.add_argument("--full", action="store_true", help="also 3,200,000 pairs, when memory allows")
    f.add_argument("--runs", type=int, default=10, help="repetitions per size (default 10, at least 2)")
    f.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    f.add_argument("--data", type=str, default="", metavar="DIR",
                   help="MovieLens folder (movies.csv + ratings.csv, or u.item + u.data); default: the shipped one")
    f.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _with_full(sizes: list[int], console) -> list[int]:
    """``sizes`` plus :data:`FULL_SIZE` when the memory it needs is available (else a warning)."""
    if FULL_SIZE in sizes:
        return sizes
    avail = _available_bytes()
    need = min(FULL_SIZE, CHUNK) * BYTES_PER_PAIR + FULL_SIZE * 64
    if avail is not None and avail < need:
        console.print(f"[yellow]--full: skipping {FULL_SIZE:,} pairs: {avail / 2**30:.1f} GiB available, "
                      f"about {need / 2**30:.1f} GiB needed[/]")
        return sizes
    return [*sizes, FULL_SIZE]


def _print_rows(console, rows: list[dict], runs: int, out: Path) -> None:
    from rich.table import Table

    t = Table(title=f"fluctuation of the rating distribution ({runs} runs per size)")
    for c in ("pairs n", "fluctuation Σσ", "× √n", "valid replies", "mean rating", "seconds"):
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(f"{r['size']:,}", f"{r['fluctuation']:.4f}", f"{r['fluctuation'] * np.sqrt(r['size']):.2f}",
                  f"{r['valid_share']:.1%}", f"{r['mean_rating']:.2f}", f"{r['seconds']:.1f}")
    console.print(t)
    if len(rows) > 1:
        console.print(f"log-log slope: {loglog_slope(rows):.3f} (1/√n gives -0.5)")
    console.print(f"outputs: {out / 'fluctuation.parquet'}, {out / 'fluctuation.png'}")


def cmd_fluctuation(args) -> int:
    """``socius experiment fluctuation …``: run, print the table, write the outputs.

    Bad flag values and config raise :class:`~socius.errors.ConfigError` (the
    command line prints them and exits 2); an engine that cannot start prints
    ``error: …`` and returns 2.
    """
    from rich.console import Console
    from rich.markup import escape

    from socius.app.config import build_config, load_config_file
    from socius.app.engines import EngineChoice, llm_resource
    from socius.errors import EngineSetupError, MissingExtraError
    from socius.llm import LLM

    from .config import RecommenderConfig

    if args.runs < 2:
        raise ConfigError("argument --runs: must be >= 2")
    if args.temperature < 0:
        raise ConfigError("argument --temperature: must be >= 0")
    # a pipe or a CI log gets a wide console, as `socius run` does
    console = Console(width=None if sys.stdout.isatty() else 160)
    sizes = _with_full(list(args.sizes), console) if args.full else list(args.sizes)
    try:
        cfg = build_config(RecommenderConfig, {"data": args.data, "temperature": args.temperature})
        econf = load_config_file(args.engine_config) if args.engine_config else {}
    except ConfigError as e:
        raise ConfigError(f"config: {e}") from None
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    world = World(seed=args.seed)
    try:
        # the mock's thousands of replies per tick are not worth logging; real engines log every request
        world.insert_resource(llm_resource(args.scenario, cfg, args.seed, EngineChoice(kind=args.engine, config=econf),
                                           out if args.engine != "mock" else None))
        console.print(f"[bold]socius experiment fluctuation[/] engine={args.engine} sizes={sizes} runs={args.runs} "
                      f"seed={args.seed}", highlight=False)
        rows = run_fluctuation(world, cfg, sizes, args.runs, args.temperature)
    except (MissingExtraError, EngineSetupError, ConfigError) as e:
        console.print(f"[red]error:[/] {escape(str(e))}")
        return 2
    finally:
        llm = world.get_resource(LLM)
        if llm is not None:
            llm.close()
    write_outputs(rows, out, f"GenSim Fig. 2a: engine {args.engine}, {args.runs} runs")
    _print_rows(console, rows, args.runs, out)
    return 0


FLUCTUATION = Command(path=("experiment", "fluctuation"),
                      help="GenSim §2.2, Fig. 2a: rating-distribution fluctuation against the number of "
                           "simulated pairs", add_arguments=add_arguments, run=cmd_fluctuation)

__all__ = ["DEFAULT_SIZES", "FLUCTUATION", "FULL_SIZE", "add_arguments", "cmd_fluctuation", "fluctuation_of",
           "loglog_slope", "run_fluctuation", "sample_pairs", "write_outputs"]
