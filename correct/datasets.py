"""Training sets from labels: the rows TRL's trainers take, built from a label table.

GenSim (§2.3) fine-tunes on revisions ``(q, a')`` and on scores ``(q, a, s)``.
The three methods of ``socius correct train`` read them as TRL expects
(TRL's dataset formats, "prompt-completion", "unpaired preference" and
"preference"):

======  ===================================  ========================================================
method  rows                                 from
======  ===================================  ========================================================
sft     ``prompt, completion``               every label with a revision (completion = the revision)
kto     ``prompt, completion, label``        every scored label outside the band; ``label`` = good
dpo     ``prompt, chosen, rejected``         every revision that differs from the reply it revises
======  ===================================  ========================================================

``prompt`` is the prompt exactly as logged (what the engine saw), so the
adapter learns the reply to the very request it will get again. KTO's band
``(low, high)``: a score ``>= high`` is desirable, ``<= low`` undesirable, the
middle is dropped (default: the threshold 4, i.e. ``(3, 4)``, drops nothing);
KTO weighs the two sides so that ``desirable_weight * n_good`` over
``undesirable_weight * n_bad`` is 1 — the minority side gets
``majority / minority``, the other 1 — which is inside the range TRL asks for
(1 to 4/3). A set too small for its method raises :class:`LabelError`
naming what is missing.

Pure pyarrow/numpy: nothing here needs torch, so sets can be built, counted
and checked where the ``train`` extra is not installed.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .labels import LabelError

__all__ = ["METHODS", "TrainingSet", "build_training_set", "select_labels", "sft_rows", "kto_rows", "dpo_rows",
           "parse_band"]

METHODS = ("sft", "kto", "dpo")
COLUMNS = {"sft": ("prompt", "completion"), "kto": ("prompt", "completion", "label"),
           "dpo": ("prompt", "chosen", "rejected")}


@dataclass(frozen=True)
class TrainingSet:
    """The rows of one method (``rows``: ``[n]``, columns :data:`COLUMNS` ``[method]``, large_string /
    bool) and the label rows they came from (``labels``: ``[m]`` label rows, for the manifest's fingerprint).

    ``desirable_weight`` / ``undesirable_weight``: KTO's side weights (1.0 for the others).
    """

    method: str
    rows: pa.Table
    labels: pa.Table
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0

    def __len__(self) -> int:
        return self.rows.num_rows

    def write(self, path: str | Path) -> Path:
        """Write ``rows`` as one Parquet file, atomically (temp file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        try:
            pq.write_table(self.rows, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path


def parse_band(text: str) -> tuple[int, int]:
    """``"LOW:HIGH"`` (scores 1–5, LOW < HIGH) as a pair; :class:`LabelError` naming ``--band`` otherwise."""
    try:
        low, high = (int(x) for x in str(text).split(":"))
    except ValueError:
        raise LabelError(f"--band {text!r}: expected LOW:HIGH, e.g. 2:4") from None
    if not 1 <= low < high <= 5:
        raise LabelError(f"--band {text!r}: need 1 <= LOW < HIGH <= 5")
    return low, high


def select_labels(labels: pa.Table, decisions=None, sources=None, model: str | None = None,
                  kinds=("answer",)) -> pa.Table:
    """The label rows to train on: by decision names, source prefixes (``"judge:"``, ``"human:alice"``),
    engine model name and call kind (default: the agents' answers, not extraction calls)."""
    keep = np.ones(labels.num_rows, bool)

    def col(name):
        return labels.column(name).to_numpy(zero_copy_only=False).astype(str)

    if decisions:
        keep &= np.isin(col("decision"), list(decisions))
    if sources:
        src = col("source")
        keep &= np.logical_or.reduce([np.char.startswith(src, s) for s in sources])
    if model is not None:
        keep &= col("model") == model
    if kinds:
        keep &= np.isin(col("kind"), list(kinds))
    return labels.filter(pa.array(keep))


def _has_revision(labels: pa.Table) -> np.ndarray:
    rev = labels.column("revision")
    return rev.is_valid().to_numpy(zero_copy_only=False) & (pc.utf8_length(rev.fill_null("")).to_numpy(
        zero_copy_only=False) > 0)


def sft_rows(labels: pa.Table) -> pa.Table:
    """``{prompt, completion}``: one row per label with a non-empty revision."""
    take = pa.array(np.flatnonzero(_has_revision(labels)))
    return pa.table({"prompt": labels.column("prompt").take(take).cast(pa.large_string()),
                     "completion": labels.column("revision").take(take).cast(pa.large_string())})


def kto_rows(labels: pa.Table, band: tuple[int, int] = (3, 4)) -> pa.Table:
    """``{prompt, completion, label}``: scored labels, ``label = score >= band[1]``; scores strictly
    between ``band[0]`` and ``band[1]`` are dropped."""
    low, high = band
    score = labels.column("score").to_numpy(zero_copy_only=False).astype(np.float64)  # NaN = no score
    good, bad = score >= high, score <= low
    idx = np.flatnonzero(good | bad)
    take = pa.array(idx)
    return pa.table({"prompt": labels.column("prompt").take(take).cast(pa.large_string()),
                     "completion": labels.column("completion").take(take).cast(pa.large_string()),
                     "label": pa.array(good[idx], pa.bool_())})


def dpo_rows(labels: pa.Table) -> pa.Table:
    """``{prompt, chosen, rejected}`` = (revision, original reply) where a revision differs from the reply."""
    rev = labels.column("revision").fill_null("").cast(pa.large_string())
    comp = labels.column("completion").cast(pa.large_string())
    differs = pc.not_equal(rev, comp).to_numpy(zero_copy_only=False)
    take = pa.array(np.flatnonzero(_has_revision(labels) & differs))
    return pa.table({"prompt": labels.column("prompt").take(take).cast(pa.large_string()),
                     "chosen": rev.take(take), "rejected": comp.take(take)})


def build_training_set(labels: pa.Table, method: str, band: tuple[int, int] = (3, 4),
                       min_rows: int = 1) -> TrainingSet:
    """The :class:`TrainingSet` of ``method`` from ``labels`` (a label table, e.g.
    ``LabelStore(run).read(latest=True)``); raises :class:`LabelError` when it has fewer than
    ``min_rows`` rows (KTO: when either side is empty)."""
    if method not in METHODS:
        raise LabelError(f"--method {method!r}: choose from {', '.join(METHODS)}")
    if method == "sft":
        rows, what = sft_rows(labels), "labels with revisions"
    elif method == "dpo":
        rows, what = dpo_rows(labels), "labels with revisions that differ from the reply"
    else:
        rows, what = kto_rows(labels, band), f"scored labels outside the band {band[0]}:{band[1]}"
    n = rows.num_rows
    if n < max(min_rows, 1):
        raise LabelError(f"method {method} needs {max(min_rows, 1)} {what}; this set has {n} "
                         f"(of {labels.num_rows} labels)")
    wd = wu = 1.0
    if method == "kto":
        lab = rows.column("label").to_numpy(zero_copy_only=False)
        n_good, n_bad = int(lab.sum()), int((~lab).sum())
        if n_good == 0 or n_bad == 0:
            raise LabelError(f"method kto needs scored labels on both sides of the band {band[0]}:{band[1]}; "
                             f"this set has {n_good} desirable (score >= {band[1]}) and {n_bad} undesirable "
                             f"(score <= {band[0]})")
        if n_good < n_bad:
            wd = n_bad / n_good
        else:
            wu = n_good / n_bad
    return TrainingSet(method, rows, labels, wd, wu)
