"""Which replies to label: sampling policies over a run's replies table.

A policy is a pure function of the replies (``[m]`` rows from
:func:`~socius.correct.responses.load_replies`) and a seed that returns row
indices ``[k] int64`` into that table, in the order they should be labelled.
Each row gets a random key drawn from the seed and the row's *identity* —
run, tick, decision, call kind, entity, prompt hash, completion index and
text — never from its position, so the same seed picks the same replies in
the same order whatever order the files were read in (ties, which only rows
with the same identity can have, break on the identity itself).

Policies (:func:`sample` takes them as a spec string, ``,``-separated, or a dict):

=========================  =================================================================
``uniform:K``              K rows, every row equally likely
``per-decision:K``         K rows of every decision (all of a decision that has fewer)
``per-cohort:K:EXPR``      K rows whose agent meets ``EXPR`` in the run's final world, e.g.
                           ``Profile.age >= 60 and Team.group == 3`` (conditions of
                           :func:`socius.systems.find_agents`, joined by ``and``)
``outcome-first:K``        first the ``answer`` rows that needed the extraction call (their
                           (tick, decision, entity) has an ``extract`` row: extracted, or
                           fell back), then the rest
``cap:N``                  with any of the above: at most N rows per agent
=========================  =================================================================

The dict form is ``{"policy": "uniform", "k": 200, "cap": 2, "where": EXPR}``.
The cap is applied along the policy's order before the quota, so ``uniform:100,cap:2``
still gives 100 rows when there are enough agents.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import EntityRng
from socius.text.hashing import hash_strings

from .labels import LabelError

__all__ = ["POLICIES", "cap_per_agent", "needed_extraction", "outcome_first", "parse_spec", "per_cohort",
           "per_decision", "run_world", "sample", "sample_keys", "uniform"]

POLICIES = ("uniform", "per-decision", "per-cohort", "outcome-first")
_IDENTITY = ("run", "tick", "decision", "kind", "entity", "prompt_hash", "completion_index", "completion")
_SEP = pa.scalar("\x1f", pa.large_string())
_PART = re.compile(r",\s*(?=(?:uniform|per-decision|per-cohort|outcome-first|cap)\s*:)")


def _column(replies: pa.Table, name: str) -> np.ndarray:
    if name not in replies.column_names:
        raise LabelError(f"sampling: the replies table has no column {name!r} (use load_replies)")
    return replies.column(name).to_numpy(zero_copy_only=False)


def _identity(replies: pa.Table) -> pa.Array:
    cols = [replies.column(c).cast(pa.large_string()) for c in _IDENTITY if c in replies.column_names]
    if not cols:
        raise LabelError("sampling: the replies table has none of the identity columns " + ", ".join(_IDENTITY))
    out = pc.binary_join_element_wise(*cols, _SEP) if len(cols) > 1 else cols[0]
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def sample_keys(replies: pa.Table, seed: int) -> np.ndarray:
    """``[m] int64``: every row's rank in the random order of ``seed`` (0 first), from its identity alone."""
    ident = _identity(replies)
    h = hash_strings(ident).view(np.int64)
    keys = EntityRng(seed, "correct:sample", 0).bits(h)
    # ties (equal keys) break on the identity's sorted position: free of the row order too
    tie = pc.rank(ident, sort_keys="ascending", tiebreaker="dense").to_numpy(zero_copy_only=False)
    order = np.lexsort((tie, keys))
    rank = np.empty(replies.num_rows, np.int64)
    rank[order] = np.arange(replies.num_rows)
    return rank


def _within_group_count(order: np.ndarray, group: np.ndarray) -> np.ndarray:
    """``[len(order)]``: how many earlier rows of ``order`` share the row's ``group`` value."""
    g = group[order]
    by = np.argsort(g, kind="stable")
    gs = g[by]
    starts = np.r_[0, np.flatnonzero(gs[1:] != gs[:-1]) + 1] if gs.shape[0] else np.zeros(0, np.int64)
    first = np.zeros(gs.shape[0], np.int64)
    first[starts] = starts
    first = np.maximum.accumulate(first) if gs.shape[0] else first
    out = np.empty(gs.shape[0], np.int64)
    out[by] = np.arange(gs.shape[0]) - first
    return out


def cap_per_agent(replies: pa.Table, order: np.ndarray, n: int) -> np.ndarray:
    """The rows of ``order`` (indices, in order) kept when each agent may appear at most ``n`` times."""
    if n < 1:
        raise LabelError(f"sampling: cap must be >= 1, got {n}")
    order = np.asarray(order, np.int64)
    return order[_within_group_count(order, _column(replies, "entity")) < n]


def _ordered(replies: pa.Table, seed: int, eligible: np.ndarray | None = None) -> np.ndarray:
    """Every (``eligible``, ``[m] bool``) row index in the seed's order."""
    rank = sample_keys(replies, seed)
    if eligible is None:
        return np.argsort(rank)
    eligible = np.asarray(eligible, bool)
    if eligible.shape != (replies.num_rows,):
        raise LabelError(f"sampling: eligible must be [{replies.num_rows}] bool, got shape {eligible.shape}")
    rows = np.flatnonzero(eligible)
    return rows[np.argsort(rank[rows])]


def _take(order: np.ndarray, k: int, replies: pa.Table, cap: int | None) -> np.ndarray:
    if k < 0:
        raise LabelError(f"sampling: k must be >= 0, got {k}")
    if cap is not None:
        order = cap_per_agent(replies, order, cap)
    return order[:k]


def uniform(replies: pa.Table, k: int, seed: int, cap: int | None = None, eligible=None) -> np.ndarray:
    """``[min(k, m)]`` rows, each equally likely (at most ``cap`` per agent; only ``eligible`` rows)."""
    return _take(_ordered(replies, seed, eligible), k, replies, cap)


def per_decision(replies: pa.Table, k: int, seed: int, cap: int | None = None, eligible=None) -> np.ndarray:
    """Up to ``k`` rows of every decision, in the seed's order (at most ``cap`` per agent overall)."""
    if k < 0:
        raise LabelError(f"sampling: k must be >= 0, got {k}")
    order = _ordered(replies, seed, eligible)
    if cap is not None:
        order = cap_per_agent(replies, order, cap)
    _column(replies, "decision")  # names the column if it is missing
    decision = pc.dictionary_encode(replies.column("decision").combine_chunks()).indices.to_numpy(
        zero_copy_only=False)
    return order[_within_group_count(order, decision) < k]


def _conditions(expr: str) -> list[str]:
    conds = [c.strip() for c in re.split(r"\s+and\s+", expr.strip()) if c.strip()]
    if not conds:
        raise LabelError(f"sampling: empty cohort expression {expr!r}")
    return conds


def per_cohort(replies: pa.Table, expr: str, k: int, seed: int, world, cap: int | None = None,
               eligible=None) -> np.ndarray:
    """Up to ``k`` rows whose agent meets ``expr`` in ``world`` (the run's final world, :func:`run_world`)."""
    from socius.systems import InterventionError, find_agents

    if world is None:
        raise LabelError(f"sampling: per-cohort {expr!r} needs the run's world (its final snapshot)")
    try:
        agents = find_agents(world, _conditions(expr))
    except InterventionError as e:
        raise LabelError(f"sampling: per-cohort: {e}") from None
    member = np.isin(_column(replies, "entity"), agents)
    return _take(_ordered(replies, seed, member if eligible is None else member & eligible), k, replies, cap)


def needed_extraction(replies: pa.Table) -> np.ndarray:
    """``[m] bool``: ``answer`` rows whose (tick, decision, entity) also has an ``extract`` row."""
    kind = _column(replies, "kind").astype(str)
    key = hash_strings(pc.binary_join_element_wise(*[replies.column(c).cast(pa.large_string())
                                                     for c in ("tick", "decision", "entity")], _SEP))
    ex = kind == "extract"
    return (kind == "answer") & np.isin(key, key[ex])


def outcome_first(replies: pa.Table, k: int, seed: int, cap: int | None = None, eligible=None) -> np.ndarray:
    """Up to ``k`` rows: the answers that needed the extraction call first, then the rest (each in seed order);
    the extraction calls are looked for in the whole table, ``eligible`` or not."""
    order = _ordered(replies, seed, eligible)
    first = needed_extraction(replies)[order]
    order = np.concatenate([order[first], order[~first]])
    return _take(order, k, replies, cap)


def parse_spec(spec) -> dict:
    """``{"policy", "k", "cap", "where"}`` from a spec string (``"outcome-first:100,cap:2"``) or dict."""
    if isinstance(spec, dict):
        out = {"policy": spec.get("policy"), "k": spec.get("k"), "cap": spec.get("cap"), "where": spec.get("where")}
        unknown = set(spec) - set(out)
        if unknown:
            raise LabelError(f"sample spec: unknown keys {sorted(unknown)}")
    elif isinstance(spec, str):
        out = {"policy": None, "k": None, "cap": None, "where": None}
        for part in _PART.split(spec.strip()):
            name, _, rest = part.partition(":")
            name = name.strip()
            if name == "per-cohort":
                k, _, out["where"] = rest.partition(":")
                rest = k
            if name == "cap":
                out["cap"] = _int(rest, spec, "cap")
                continue
            if name not in POLICIES:
                raise LabelError(f"sample spec {spec!r}: unknown policy {name!r} (one of {', '.join(POLICIES)}, cap)")
            if out["policy"] is not None:
                raise LabelError(f"sample spec {spec!r}: more than one policy")
            out["policy"], out["k"] = name, (_int(rest, spec, name) if rest.strip() else None)
    else:
        raise LabelError(f"sample spec must be a string or a dict, got {type(spec).__name__}")
    if out["policy"] not in POLICIES:
        raise LabelError(f"sample spec {spec!r}: needs one policy of {', '.join(POLICIES)}")
    for key, least in (("k", 0), ("cap", 1)):
        value = out[key]
        if value is not None and (not isinstance(value, (int, np.integer)) or value < least):
            raise LabelError(f"sample spec {spec!r}: {key} must be an integer >= {least}")
    if out["k"] is None:
        raise LabelError(f"sample spec {spec!r}: {out['policy']} needs a count (e.g. {out['policy']}:100)")
    if (out["policy"] == "per-cohort") != bool(out["where"]):
        raise LabelError(f"sample spec {spec!r}: an expression goes with per-cohort (per-cohort:K:EXPR) and only there")
    return out


def _int(text: str, spec, name: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise LabelError(f"sample spec {spec!r}: {name} needs an integer, got {text.strip()!r}") from None


def sample(replies: pa.Table, spec, seed: int = 0, world=None, eligible=None) -> np.ndarray:
    """``[k] int64`` row indices of ``replies`` chosen by ``spec`` (see the module docstring), in label order.

    ``world``: the run's final world, for ``per-cohort`` (:func:`run_world`); ``eligible``: ``[m] bool``,
    the rows that may be picked (default all; e.g. only ``answer`` rows)."""
    s = parse_spec(spec)
    if s["policy"] == "uniform":
        return uniform(replies, s["k"], seed, s["cap"], eligible)
    if s["policy"] == "per-decision":
        return per_decision(replies, s["k"], seed, s["cap"], eligible)
    if s["policy"] == "per-cohort":
        return per_cohort(replies, s["where"], s["k"], seed, world, s["cap"], eligible)
    return outcome_first(replies, s["k"], seed, s["cap"], eligible)


def run_world(run_dir: str | Path):
    """The run's final world (no systems), from ``snapshot.socius`` or ``snapshot.ranks/`` in ``run_dir``;
    the newer of the two when both exist. Raises :class:`LabelError` naming the folder when there is none."""
    from socius.ecs import SnapshotError
    from socius.mpi.snapshot import load_snapshot, snapshot_info

    root = Path(run_dir)
    found = [p for p in (root / "snapshot.socius", root / "snapshot.ranks") if p.exists()]
    if not found:
        raise LabelError(f"{root}: no snapshot (snapshot.socius or snapshot.ranks/) to find the agents in")
    try:
        return load_snapshot(max(found, key=lambda p: int(snapshot_info(p)["tick"])))
    except (SnapshotError, ImportError, OSError) as e:
        raise LabelError(f"{root}: cannot read the final snapshot ({type(e).__name__}: {e})") from None
