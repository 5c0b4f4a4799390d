"""The label store: scores and revisions of logged replies, kept with the run.

GenSim's correction loop (§2.3) learns from ``(q, a, s)`` scores and
``(q, a')`` revisions. Here each label is one row tied to the response-log
row it judges — the run, tick, decision, call kind, entity, prompt hash,
prompt, completion, model, adapter and seed, exactly as logged — plus who
labelled it (``source``: ``judge:<model>``, ``rule:<name>``,
``human:<name>``), a score 1–5 and/or a revision, a rationale and the time.
Nothing is paraphrased, so a label can always be traced to the request the
engine saw.

Storage: ``RUN_DIR/labels/`` holds Parquet parts, one per :meth:`append`,
each written to a temporary name and renamed into place, so a crash leaves
either the whole part or nothing; readers take every ``part-*.parquet``.
Parts are never rewritten: a later label of the same reply by the same
source supersedes the earlier one when read with ``latest=True``.

Columns (:data:`LABEL_SCHEMA`; ``[m]`` rows):

=============  ======================  =========================================
column         type                    meaning
=============  ======================  =========================================
label_id       string                  XXH64 of the row's content, hex (stable across re-imports)
run            string                  run id (the run directory's name)
tick           int64                   tick of the logged call
decision       string                  decision name
kind           string                  ``answer`` or ``extract``
entity         int64                   agent the reply went to (the request's first agent when shared)
prompt_hash    int64                   XXH64 of the prompt, as logged
prompt         large_string            the prompt the engine saw
completion     large_string            the reply judged
model          string                  engine model name ("" = the default engine)
adapter        string                  LoRA adapter name ("" = none)
seed           int64                   the request's seed
source         string                  ``judge:<model>`` | ``rule:<name>`` | ``human:<name>``
score          int8 (null)             1 (wrong) … 5 (fully reasonable)
revision       large_string (null)     a better reply, if given
rationale      large_string (null)     why
time           timestamp[us, UTC]      when the label was made
=============  ======================  =========================================
"""
from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from socius.errors import ConfigError
from socius.text.hashing import hash_strings

__all__ = ["LABEL_SCHEMA", "REPLY_COLUMNS", "LabelError", "LabelStore", "make_labels", "SOURCE_KINDS"]

#: the columns that identify the judged reply (copied from the response log)
REPLY_COLUMNS = ("run", "tick", "decision", "kind", "entity", "prompt_hash", "prompt", "completion", "model",
                 "adapter", "seed")
SOURCE_KINDS = ("judge", "rule", "human")
_SEP = pa.scalar("\x1f", pa.large_string())

LABEL_SCHEMA = pa.schema([
    ("label_id", pa.string()),
    ("run", pa.string()),
    ("tick", pa.int64()),
    ("decision", pa.string()),
    ("kind", pa.string()),
    ("entity", pa.int64()),
    ("prompt_hash", pa.int64()),
    ("prompt", pa.large_string()),
    ("completion", pa.large_string()),
    ("model", pa.string()),
    ("adapter", pa.string()),
    ("seed", pa.int64()),
    ("source", pa.string()),
    ("score", pa.int8()),
    ("revision", pa.large_string()),
    ("rationale", pa.large_string()),
    ("time", pa.timestamp("us", tz="UTC")),
])


class LabelError(ConfigError):
    """A label set or label file that cannot be used (names the file or the column)."""


def _label_ids(table: pa.Table) -> pa.Array:
    """A content hash per row over the reply's identity, the source and the label itself."""
    keys = ("run", "tick", "decision", "kind", "entity", "prompt_hash", "completion", "source", "score",
            "revision")
    cols = [table.column(k).cast(pa.large_string()).fill_null("\0") for k in keys]
    h = hash_strings(pc.binary_join_element_wise(*cols, _SEP))
    return pc.utf8_lpad(pa.array(np.char.mod("%x", h).astype(object), pa.string()), 16, "0")


def make_labels(replies: pa.Table, source: str, score=None, revision=None, rationale=None,
                time: datetime | None = None) -> pa.Table:
    """Label rows for ``replies`` (a table with :data:`REPLY_COLUMNS`, ``[m]`` rows).

    ``score``: ``[m]`` ints 1–5 (or None / masked for no score); ``revision``,
    ``rationale``: ``[m]`` strings or None. Raises :class:`LabelError` for a
    bad source, a score out of range, or a row with neither score nor revision.
    """
    m = replies.num_rows
    kind = source.partition(":")[0]
    if kind not in SOURCE_KINDS or not source.partition(":")[2]:
        raise LabelError(f"label source {source!r}: must be judge:<model>, rule:<name> or human:<name>")
    missing = [c for c in REPLY_COLUMNS if c not in replies.column_names]
    if missing:
        raise LabelError(f"labels: the replies lack columns {missing}")

    def column(values, typ):
        if values is None:
            return pa.nulls(m, typ)
        arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=typ, from_pandas=True)
        if len(arr) != m:
            raise LabelError(f"labels: {len(arr)} values for {m} replies")
        return arr.cast(typ)

    cols = {c: replies.column(c).cast(LABEL_SCHEMA.field(c).type) for c in REPLY_COLUMNS}
    cols["source"] = pa.array([source] * m, pa.string())
    cols["score"] = column(score, pa.int8())
    cols["revision"] = column(revision, pa.large_string())
    cols["rationale"] = column(rationale, pa.large_string())
    now = time or datetime.now(timezone.utc)
    cols["time"] = pa.array([now] * m, pa.timestamp("us", tz="UTC"))
    cols["label_id"] = pa.nulls(m, pa.string())
    table = pa.table({f.name: cols[f.name] for f in LABEL_SCHEMA}, schema=LABEL_SCHEMA)
    table = table.set_column(0, "label_id", _label_ids(table))
    validate(table, "labels")
    return table


def validate(table: pa.Table, where: str) -> None:
    """Raise :class:`LabelError` naming ``where`` unless ``table`` is a valid label table."""
    if not table.schema.equals(LABEL_SCHEMA):
        got = {f.name: str(f.type) for f in table.schema}
        want = {f.name: str(f.type) for f in LABEL_SCHEMA}
        diff = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
        raise LabelError(f"{where}: not a label table (columns differ: {diff})")
    score = table.column("score").to_numpy(zero_copy_only=False)
    has_score = ~np.isnan(score.astype(np.float64))
    if (has_score & ((score < 1) | (score > 5))).any():
        raise LabelError(f"{where}: scores must be 1..5")
    has_rev = table.column("revision").is_valid().to_numpy(zero_copy_only=False)
    if (~has_score & ~has_rev).any():
        raise LabelError(f"{where}: every label needs a score or a revision")
    for c in ("completion", "prompt", "source", "label_id"):
        if table.column(c).null_count:
            raise LabelError(f"{where}: column {c} has missing values")


class LabelStore:
    """The labels of one run: ``RUN_DIR/labels/part-*.parquet`` (see the module docstring)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / "labels"
        self._seq = 0

    def parts(self) -> list[Path]:
        return sorted(self.dir.glob("part-*.parquet")) if self.dir.is_dir() else []

    def append(self, labels: pa.Table) -> Path | None:
        """Write ``labels`` (a valid label table) as one new part; returns its path (None if empty)."""
        validate(labels, "labels")
        if labels.num_rows == 0:
            return None
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        self._seq += 1
        name = f"part-{stamp}-{os.getpid()}-{self._seq:04d}.parquet"
        tmp = self.dir / f".{name}.tmp"
        pq.write_table(labels, tmp)
        tmp.replace(self.dir / name)
        return self.dir / name

    def read(self, latest: bool = False) -> pa.Table:
        """Every label, in time order (ties by label_id); ``latest``: one per (reply, source), the newest."""
        tables = []
        for part in self.parts():
            try:
                t = pq.read_table(part)
            except Exception as e:  # noqa: BLE001 - any unreadable file is named, not propagated raw
                raise LabelError(f"{part}: unreadable label file ({type(e).__name__}: {e})") from None
            validate(t, str(part))
            tables.append(t)
        if not tables:
            return LABEL_SCHEMA.empty_table()
        table = pa.concat_tables(tables).sort_by([("time", "ascending"), ("label_id", "ascending")])
        if latest and table.num_rows:
            key = pc.binary_join_element_wise(
                *[table.column(c).cast(pa.large_string()) for c in ("run", "tick", "decision", "kind", "entity",
                                                                      "prompt_hash", "completion", "source")],
                _SEP).to_numpy(zero_copy_only=False)
            _, last_rev = np.unique(key[::-1], return_index=True)
            keep = np.sort(table.num_rows - 1 - last_rev)
            table = table.take(pa.array(keep))
        return table

    def fingerprint(self, table: pa.Table | None = None) -> str:
        """A hash of a label set (default: all labels) that names it in an adapter's manifest."""
        table = self.read() if table is None else table
        ids = sorted(table.column("label_id").to_pylist())
        return hashlib.blake2b("\n".join(ids).encode(), digest_size=16).hexdigest()
