"""What every judge shares: its result, which rows it judges, and helpers for rules over string columns.

See :mod:`socius.correct.judges` for the judges themselves. The helpers run
Arrow's RE2 kernels over whole columns (named group ``v``), never a Python
loop over rows.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import STR


__all__ = ["JudgeResult", "judgeable", "matching", "extract", "extract_number", "contains", "score_counts",
           "first_finding",
           "count_rows"]


@dataclass
class JudgeResult:
    """What one judge made of a replies table.

    ``labels``: the label table (one row per labelled reply); ``counts``:
    per decision, ``{"replies": judged rows, "labelled": rows with a label,
    "fallback": judge calls that fell back (no label), "failed": judge calls
    the engine failed (no label), "extracted": judge replies that needed the
    extraction call}``.
    """

    source: str
    labels: pa.Table
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def unlabelled(self) -> int:
        return sum(c.get("fallback", 0) + c.get("failed", 0) for c in self.counts.values())


def matching(names, patterns) -> np.ndarray:
    """``[m] bool``: which decision ``names`` match any of ``patterns`` (exact names or ``fnmatch`` globs)."""
    names = np.asarray(names, dtype=STR)
    uniq, inv = np.unique(names, return_inverse=True)  # a handful of decision names, not rows
    hit = np.array([any(fnmatch.fnmatchcase(str(u), p) for p in patterns) for u in uniq], dtype=bool)
    return hit[inv.reshape(-1)] if uniq.shape[0] else np.zeros(0, dtype=bool)


def judgeable(replies: pa.Table, patterns=("*",)) -> pa.Table:
    """The rows a judge of decisions ``patterns`` scores: ``answer`` calls the engine answered."""
    if replies.num_rows == 0:
        return replies
    keep = matching(replies.column("decision").to_numpy(zero_copy_only=False), patterns)
    keep &= np.asarray(pc.equal(replies.column("kind"), "answer").to_numpy(zero_copy_only=False), dtype=bool)
    if "error" in replies.column_names:
        err = replies.column("error").fill_null("")
        keep &= np.asarray(pc.equal(err, "").to_numpy(zero_copy_only=False), dtype=bool)
    return replies.filter(pa.array(keep))


def count_rows(decisions, labelled: np.ndarray, extracted: np.ndarray | None = None,
               failed: np.ndarray | None = None) -> dict[str, dict[str, int]]:
    """:attr:`JudgeResult.counts` from ``[m]`` decision names and ``[m] bool`` masks (no label = fallback or failed)."""
    dec = np.asarray(decisions.to_numpy(zero_copy_only=False) if hasattr(decisions, "to_numpy") else decisions
                     ).astype(STR)
    m = dec.shape[0]
    extracted = np.zeros(m, dtype=bool) if extracted is None else extracted
    failed = np.zeros(m, dtype=bool) if failed is None else failed
    out = {}
    for d in np.unique(dec):  # decisions, not rows
        k = dec == d
        out[str(d)] = {"replies": int(k.sum()), "labelled": int((k & labelled).sum()),
                       "extracted": int((k & labelled & extracted).sum()),
                       "fallback": int((k & ~labelled & ~failed).sum()), "failed": int((k & failed).sum())}
    return out


def score_counts(labels: pa.Table) -> dict[str, np.ndarray]:
    """Per decision, ``[5] int64`` counts of scores 1..5 (labels without a score left out)."""
    if labels.num_rows == 0:
        return {}
    dec = labels.column("decision").to_numpy(zero_copy_only=False).astype(STR)
    score = labels.column("score").to_numpy(zero_copy_only=False).astype(np.float64)
    out = {}
    for d in np.unique(dec):  # decisions, not rows
        s = score[(dec == d) & ~np.isnan(score)].astype(np.int64)
        out[str(d)] = np.bincount(s, minlength=6)[1:6]
    return out


# ------------------------------------------------------------------ helpers for rules over string columns

def _arrow(texts) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        return texts.combine_chunks().cast(pa.large_string())
    if isinstance(texts, pa.Array):
        return texts.cast(pa.large_string())
    return pa.array(np.asarray(texts, dtype=STR), type=pa.large_string())


def extract(texts, pattern: str, default: str = "") -> np.ndarray:
    """``[m] StringDType``: the named group ``v`` of ``pattern`` (RE2) in each text, ``default`` where absent."""
    found = pc.extract_regex(_arrow(texts), pattern=pattern)
    return np.asarray(pc.if_else(found.is_valid(), found.field("v"), default).to_numpy(zero_copy_only=False)
                      ).astype(STR)


def extract_number(texts, pattern: str) -> np.ndarray:
    """``[m] float64``: the number in group ``v`` of ``pattern``, NaN where absent."""
    found = pc.extract_regex(_arrow(texts), pattern=pattern)
    raw = pc.if_else(found.is_valid(), found.field("v"), "nan")
    return pc.cast(raw, pa.float64(), safe=False).to_numpy(zero_copy_only=False)


def contains(texts, pattern: str, ignore_case: bool = True) -> np.ndarray:
    """``[m] bool``: where ``pattern`` (RE2) occurs."""
    return np.asarray(pc.match_substring_regex(_arrow(texts), pattern=pattern, ignore_case=ignore_case)
                      .fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def first_finding(score, why, checks) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``checks`` — ``(cond [m] bool, score, rationale)``, the worst first — over ``score [m]`` and
    ``why [m]``: where several conditions hold, the first listed wins. Returns ``(score int8, why)``."""
    for cond, s, text in reversed(checks):  # the first finding is written last, so it wins
        score = np.where(cond, np.int8(s), score)
        why = np.where(cond, text, why)
    return score.astype(np.int8), why
