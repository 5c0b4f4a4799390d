"""A run's logged replies, one row per completion: what judges and people label.

The response log (``RUN_DIR/responses/*.parquet``, or one folder per rank,
``responses/rank-NNNNN/``) has one row per engine request with its list of
completions. :func:`load_replies` flattens it to one row per completion
with the :data:`~socius.correct.labels.REPLY_COLUMNS` plus ``completion_index``
(the completion's place in its request) and ``error`` (the engine's error
text, "" when it answered). Which agent a completion went to: the log's
``entities`` list where it has one, else the request's first agent (a greedy
request is shared by every agent that asked the same prompt, and they all
got this reply).

Rows come in log order: by file name (tick, decision, kind), then request,
then completion; across ranks, rank by rank — so the table is the same
however often it is read.

``since_tick`` / ``before_tick`` keep the ticks ``since <= tick < before``
and choose the *files* by the tick in their name
(``tick-XXXXXXXX-<decision>-<kind>.parquet``), so a correction round reads
only the files of the ticks since the last round, not the whole log again.
A range that no file falls in gives an empty table (:data:`REPLY_SCHEMA`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .labels import LabelError

__all__ = ["REPLY_SCHEMA", "load_replies", "response_files"]

#: one row per logged completion (what :func:`load_replies` returns)
REPLY_SCHEMA = pa.schema([("run", pa.string()), ("tick", pa.int64()), ("decision", pa.string()),
                          ("kind", pa.string()), ("entity", pa.int64()), ("prompt_hash", pa.int64()),
                          ("prompt", pa.large_string()), ("completion", pa.large_string()), ("model", pa.string()),
                          ("adapter", pa.string()), ("seed", pa.int64()), ("completion_index", pa.int64()),
                          ("error", pa.string())])
_TICK = re.compile(r"^tick-(\d+)-")


def response_files(run_dir: str | Path, since_tick: int | None = None,
                   before_tick: int | None = None) -> list[Path]:
    """The response-log files of a run directory (or of a ``responses`` folder itself), those of ticks
    ``since_tick <= tick < before_tick`` by their name when either is given (a file whose name has no
    tick is kept: its rows are filtered after reading)."""
    root = Path(run_dir)
    base = root / "responses" if (root / "responses").is_dir() else root
    if not base.is_dir():
        raise LabelError(f"{root}: no response log (expected {root / 'responses'})")
    files = sorted(base.glob("tick-*.parquet")) + sorted(base.glob("rank-*/tick-*.parquet"))
    if not files:
        raise LabelError(f"{base}: the response log is empty")
    lo = -1 if since_tick is None else int(since_tick)
    hi = None if before_tick is None else int(before_tick)
    ticks = [_TICK.match(f.name) for f in files]
    return [f for f, m in zip(files, ticks)
            if m is None or (int(m.group(1)) >= lo and (hi is None or int(m.group(1)) < hi))]


def load_replies(run_dir: str | Path, decisions: tuple[str, ...] | None = None, since_tick: int | None = None,
                 before_tick: int | None = None) -> pa.Table:
    """``[m]`` rows (:data:`REPLY_SCHEMA`), one per logged completion (see the module docstring);
    ``decisions`` filters by name, ``since_tick``/``before_tick`` by tick (an empty range: no rows)."""
    root = Path(run_dir)
    run = root.name if (root / "responses").is_dir() else root.parent.name
    ranged = since_tick is not None or before_tick is not None
    parts = []
    for f in response_files(run_dir, since_tick, before_tick):
        try:
            t = pq.read_table(f)
        except Exception as e:  # noqa: BLE001 - a corrupt file is named
            raise LabelError(f"{f}: unreadable response log file ({type(e).__name__}: {e})") from None
        if decisions is not None and t.num_rows and t.column("decision")[0].as_py() not in decisions:
            continue
        parts.append(_flatten(t, run, f))
    if not parts and not ranged:
        raise LabelError(f"{run_dir}: no logged replies" + (f" for decisions {list(decisions)}" if decisions else ""))
    out = pa.concat_tables(parts) if parts else REPLY_SCHEMA.empty_table()
    if ranged:  # the rows too: a file named without its tick, or one a rename left behind
        t = out.column("tick")
        keep = pc.greater_equal(t, -1 if since_tick is None else int(since_tick))
        if before_tick is not None:
            keep = pc.and_(keep, pc.less(t, int(before_tick)))
        out = out.filter(keep)
    return out


def _flatten(t: pa.Table, run: str, where: Path) -> pa.Table:
    need = ("tick", "decision", "kind", "model", "adapter", "prompt_hash", "prompt", "seed", "first_entity",
            "completions", "error")
    missing = [c for c in need if c not in t.column_names]
    if missing:
        raise LabelError(f"{where}: not a response log file (missing {missing})")
    comps = t.column("completions").combine_chunks()
    counts = pc.list_value_length(comps).to_numpy(zero_copy_only=False).astype(np.int64)
    req = np.repeat(np.arange(t.num_rows), counts)
    starts = np.zeros(t.num_rows + 1, np.int64)
    np.cumsum(counts, out=starts[1:])
    index = np.arange(req.shape[0]) - starts[req]
    if "entities" in t.column_names:
        entity = pc.list_flatten(t.column("entities").combine_chunks()).to_numpy(zero_copy_only=False)
    else:
        entity = t.column("first_entity").to_numpy(zero_copy_only=False)[req]
    take = pa.array(req)
    return pa.table({
        "run": pa.array([run] * req.shape[0], pa.string()),
        "tick": t.column("tick").take(take),
        "decision": t.column("decision").take(take),
        "kind": t.column("kind").take(take),
        "entity": pa.array(entity, pa.int64()),
        "prompt_hash": t.column("prompt_hash").take(take),
        "prompt": t.column("prompt").take(take).cast(pa.large_string()),
        "completion": pc.list_flatten(comps).cast(pa.large_string()),
        "model": t.column("model").take(take),
        "adapter": t.column("adapter").take(take),
        "seed": t.column("seed").take(take).cast(pa.int64()),
        "completion_index": pa.array(index, pa.int64()),
        "error": t.column("error").take(take),
    })
