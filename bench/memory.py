"""Agent memory: retrieval for every agent in one tick, and embedding throughput.

::

    python -m socius.bench.memory                     # 10k and 100k agents x 64 memories x 384 dims
    python -m socius.bench.memory --size small        # 2k agents (CI smoke)
    python -m socius.bench.memory --agents 100000 --memories 32

One JSON line per case:

* ``{"bench": "memory_retrieval", "agents", "memories", "dim", "k", "tick_s", "us_per_agent",
  "rank_s", "rank_gb_s", "relevance_s", "texts_s", "texts_numpy_s", "block_gb", "bytes_per_agent",
  "threads", "load_avg", "peak_rss_mb"}`` — one :func:`~socius.systems.retrieval.retrieve` for all
  agents (queries given as vectors from the hashing embedder; relevance, scoring, top-k, the
  retrieved texts gathered into an Arrow string array, ``last_access`` update), median over
  ticks. Its parts, medians too: ``rank_s`` is the fused numba pass
  (:func:`~socius.systems.scoring.relevance_top`: relevance + scores + top-k over the float16 block
  of ``block_gb`` GB, read at ``rank_gb_s``), ``relevance_s`` the relevance pass alone
  (:func:`~socius.systems.relevance.relevance`), ``texts_s`` the rest of ``retrieve`` (gathering the
  retrieved texts, touching ``last_access``). ``texts_numpy_s`` is not in ``tick_s``: turning those
  texts into the ``[n, k]`` numpy strings of ``Recall.texts`` when a caller asks for them. ``threads`` is numba's thread count
  (``NUMBA_NUM_THREADS``), ``load_avg`` the machine's 1-minute load average before and after the
  timed ticks; ``bytes_per_agent`` the long-term memory component's size. Every slot is filled
  (written directly, not through ``remember``), so the pass reads the whole block.
* ``{"bench": "embed_throughput", "embedder", "agents", "texts_per_s", "batch_size", "peak_rss_mb"}`` —
  the hashing embedder, and the real all-MiniLM-L6-v2 model on CPU when the ``embeddings``
  extra is installed (``agents`` is the number of texts embedded).

Each retrieval case runs in a fresh interpreter so its peak RSS is its own (about the block
plus the benchmark's scratch: the first spawn into a table adopts the default columns built for it).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from socius.bench.common import emit, peak_rss_mb, run_case
from socius.ecs import STR

MODULE = "socius.bench.memory"
SIZES = {"small": {"agents": [2_000], "ticks": 3, "texts": 500},
         "large": {"agents": [10_000, 100_000], "ticks": 5, "texts": 2_000}}
WORDS = np.array("market film job friend rain dinner train school doctor garden music river city letter news "
                 "family money holiday storm party".split(), dtype=STR)


def texts(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = WORDS[rng.integers(0, WORDS.shape[0], size=(n, 6))]
    out = np.strings.add("I remember the ", w[:, 0])
    for c in range(1, 6):
        out = np.strings.add(np.strings.add(out, " and the "), w[:, c])
    return out.astype(STR)


def retrieval_case(agents: int, memories: int, dim: int, k: int, ticks: int) -> dict:
    import numba

    from socius.components.memory import LongTermMemoryBase
    from socius.ecs import World
    from socius.text.embed import HashingEmbedder
    from socius.systems import MemoryParams, relevance, relevance_top, retrieve
    from socius.text.strings import encode_fixed

    class BenchMemory(LongTermMemoryBase, capacity=memories, dim=dim):
        """The benchmark's memory block."""

    emb = HashingEmbedder(dim=dim)
    pool = texts(4096, 1)
    pool_vec = emb.embed(pool).astype(np.float16)
    world = World(seed=1)
    ids = world.spawn(agents, {BenchMemory: {}})
    rng = np.random.default_rng(2)
    view = world.query(BenchMemory)
    pool_bytes, pool_len = encode_fixed(pool, BenchMemory.text_bytes)
    with view.write(BenchMemory) as m:  # fill every slot: memory s stored at tick s
        block = m.embedding.reshape(agents, memories, dim)
        text = m.text.reshape(agents, memories, BenchMemory.text_bytes)
        for s in range(memories):
            pick = rng.integers(0, pool.shape[0], size=agents)
            block[:, s] = pool_vec[pick]
            text[:, s] = pool_bytes[pick]
            m.text_len[:, s] = pool_len[pick]
        m.tick[:] = np.arange(memories)
        m.last_access[:] = np.arange(memories)
        m.importance[:] = rng.integers(1, 11, size=(agents, memories))
    params = MemoryParams(top_k=k)
    world.insert_resource(params)
    queries = emb.embed(pool[rng.integers(0, pool.shape[0], size=agents)])
    view = world.query(BenchMemory)
    cols = [view.get(BenchMemory, c) for c in ("embedding", "tick", "importance", "last_access")]
    rows = np.arange(agents, dtype=np.int64)
    relevance(cols[0][:8], rows[:8], queries[:8], memories, dim)  # compile outside the timing
    retrieve(world, ids[:8], queries[:8], memory=BenchMemory, now=memories)
    load = [os.getloadavg()[0]]
    tick_s, rank_s, rel_s, np_s = [], [], [], []
    for t in range(ticks):
        now = memories + t
        t0 = time.perf_counter()
        relevance_top(cols[0], rows, queries, *cols[1:], now, params, k, memories, dim)
        rank_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rec = retrieve(world, ids, queries, memory=BenchMemory, now=now)
        tick_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        relevance(cols[0], rows, queries, memories, dim)
        rel_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rec.texts  # noqa: B018 - the [n, k] numpy strings, converted from Arrow on first use
        np_s.append(time.perf_counter() - t0)
    load.append(os.getloadavg()[0])
    assert rec.texts.shape == (agents, k)
    size = world.memory_by_component()
    name = next(n for n in size if n.endswith("BenchMemory"))
    med, rank = statistics.median(tick_s), statistics.median(rank_s)
    gb = cols[0].nbytes / 1e9
    return {"bench": "memory_retrieval", "agents": agents, "memories": memories, "dim": dim, "k": k,
            "tick_s": round(med, 4), "us_per_agent": round(med / agents * 1e6, 3), "rank_s": round(rank, 4),
            "rank_gb_s": round(gb / rank, 2), "relevance_s": round(statistics.median(rel_s), 4),
            "texts_s": round(med - rank, 4), "texts_numpy_s": round(statistics.median(np_s), 4), "block_gb": round(gb, 3), "bytes_per_agent": int(size[name] // agents),
            "threads": numba.get_num_threads(), "load_avg": [round(x, 2) for x in load],
            "peak_rss_mb": peak_rss_mb()}


def embed_cases(n_texts: int) -> list[dict]:
    from socius.text.embed import HashingEmbedder, embeddings_available, make_embedder

    sample = texts(n_texts, 3)
    out = []
    cases = [("hashing-384", lambda: HashingEmbedder(384), 0)]
    if embeddings_available():
        cases.append(("all-MiniLM-L6-v2 (cpu)", lambda: make_embedder("minilm", device="cpu", batch_size=64), 64))
    for name, make, batch in cases:
        e = make()
        e.embed(sample[:16])
        t0 = time.perf_counter()
        e.embed(sample)
        dt = time.perf_counter() - t0
        out.append({"bench": "embed_throughput", "embedder": name, "agents": int(n_texts),
                    "texts_per_s": round(n_texts / dt, 1), "batch_size": batch, "peak_rss_mb": peak_rss_mb()})
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m socius.bench.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="large", choices=sorted(SIZES))
    p.add_argument("--agents", type=int, nargs="*")
    p.add_argument("--memories", type=int, default=64)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--ticks", type=int)
    p.add_argument("--skip-embed", action="store_true", help="only the retrieval cases")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    cfg = SIZES[a.size]
    ticks = a.ticks or cfg["ticks"]
    if a.one:
        emit(retrieval_case(a.agents[0], a.memories, a.dim, a.k, ticks))
        return
    for n in a.agents or cfg["agents"]:
        for rec in run_case(MODULE, ["--one", "--agents", str(n), "--memories", str(a.memories), "--dim",
                                     str(a.dim), "--k", str(a.k), "--ticks", str(ticks)]):
            emit(rec)
    if not a.skip_embed:
        for rec in embed_cases(cfg["texts"]):
            emit(rec)


if __name__ == "__main__":
    main()
