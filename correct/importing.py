"""Labels made elsewhere — by people in a spreadsheet, or by another tool — brought into a run.

A label file is CSV (header row; quoted cells may hold newlines) or Parquet,
one row per label. Each row names the logged reply it judges by
``tick``, ``decision``, ``entity`` and ``prompt_hash`` (as in the response
log and :func:`~socius.correct.responses.load_replies`); any of ``kind``,
``completion_index``, ``completion``, ``model``, ``adapter`` and ``seed``
present in the file narrow the match (a sampled request's completions share
everything but ``entity``/``completion_index``/``completion``). A label
exported from a label table (all :data:`~socius.correct.labels.REPLY_COLUMNS`,
with or without ``label_id``) therefore imports as it is; ``label_id``,
``run``, ``prompt`` and ``time`` in the file are ignored — the label is
rebuilt from the run's own logged row, so nothing a file says about the
prompt or reply can differ from what the engine saw.

The label itself: ``score`` (an integer 1–5, empty for none) and/or
``revision`` (text, empty for none), optional ``rationale``, optional
``source`` per row (``human:<name>``, ``rule:<name>`` or ``judge:<model>``;
rows without one take the caller's default, ``human:import``).

Every problem is a :class:`~socius.correct.labels.LabelError` naming the
file, the (1-based) data row and the column: a missing column, a score that
is not 1–5, a row with neither score nor revision, a reply the run never
logged, or one that matches several logged replies.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.text.hashing import hash_strings

from .labels import SOURCE_KINDS, LabelError, make_labels

__all__ = ["KEY_COLUMNS", "MATCH_COLUMNS", "import_labels", "read_label_file"]

KEY_COLUMNS = ("tick", "decision", "entity", "prompt_hash")
#: further reply columns that narrow the match when the file has them
MATCH_COLUMNS = ("kind", "completion_index", "completion", "model", "adapter", "seed")
_TYPES = {"tick": pa.int64(), "decision": pa.string(), "entity": pa.int64(), "prompt_hash": pa.int64(),
          "kind": pa.string(), "completion_index": pa.int64(), "completion": pa.large_string(),
          "model": pa.string(), "adapter": pa.string(), "seed": pa.int64(), "revision": pa.large_string(),
          "rationale": pa.large_string(), "source": pa.string()}
_TEXT = ("decision", "kind", "completion", "model", "adapter", "revision", "rationale", "source", "score")
_SEP = pa.scalar("\x1f", pa.large_string())
_MAX_NAMED = 5  # rows named in one error message


def read_label_file(path: str | Path) -> pa.Table:
    """The raw table of a ``.csv`` or ``.parquet`` label file (text columns kept as text)."""
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"{path}: no such label file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            from pyarrow import csv
            parse = csv.ParseOptions(newlines_in_values=True)
            header = csv.open_csv(path, parse_options=parse).schema.names
            types = {c: pa.large_string() for c in header if c in _TEXT}
            return csv.read_csv(path, parse_options=parse,
                                convert_options=csv.ConvertOptions(column_types=types, strings_can_be_null=False))
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq
            return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise LabelError(f"{path}: unreadable label file ({type(e).__name__}: {e})") from None
    raise LabelError(f"{path}: a label file must be .csv or .parquet")


def _rows(mask: np.ndarray) -> str:
    bad = np.flatnonzero(mask) + 1
    more = f" (and {bad.shape[0] - _MAX_NAMED} more)" if bad.shape[0] > _MAX_NAMED else ""
    return ("row " if bad.shape[0] == 1 else "rows ") + ", ".join(map(str, bad[:_MAX_NAMED])) + more


def _cast(table: pa.Table, name: str, where: Path) -> pa.Array:
    col = table.column(name).combine_chunks()
    typ = _TYPES[name]
    if pa.types.is_floating(col.type) and pa.types.is_integer(typ):  # pandas writes ints with gaps as floats
        v = col.to_numpy(zero_copy_only=False)
        bad = ~np.isnan(v) & (v != np.round(v))
        if bad.any():
            raise LabelError(f"{where}: {_rows(bad)}, column {name}: not an integer")
    try:
        return col.cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ok = np.array([_castable(x, typ) for x in col.to_pylist()])  # only on the error path
        raise LabelError(f"{where}: {_rows(~ok)}, column {name}: not a {typ}") from None


def _castable(x, typ) -> bool:
    try:
        pa.array([x]).cast(typ)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def _scores(table: pa.Table, where: Path) -> pa.Array:
    """``[m] int8`` (null = no score); LabelError naming the rows that are not 1..5."""
    if "score" not in table.column_names:
        return pa.nulls(table.num_rows, pa.int8())
    col = table.column("score").combine_chunks()
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        text = pc.utf8_trim_whitespace(col)
        empty = pc.fill_null(pc.equal(text, ""), True)
        ok = pc.fill_null(pc.match_substring_regex(text, r"^[1-5](\.0*)?$"), False)
        bad = ~np.asarray(empty) & ~np.asarray(ok)
        if bad.any():
            raise LabelError(f"{where}: {_rows(bad)}, column score: must be an integer 1..5 or empty")
        digits = pc.utf8_slice_codeunits(text, 0, 1)
        return pc.if_else(empty, pa.scalar(None, pa.int8()), pc.cast(pc.if_else(empty, "0", digits), pa.int8()))
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        v = col.to_numpy(zero_copy_only=False).astype(np.float64)
        has = ~np.isnan(v)
        bad = has & ((v != np.round(v)) | (v < 1) | (v > 5))
        if bad.any():
            raise LabelError(f"{where}: {_rows(bad)}, column score: must be an integer 1..5 or empty")
        return pa.array(np.where(has, v, 0).astype(np.int8), pa.int8(), mask=~has)
    raise LabelError(f"{where}: column score has type {col.type}, expected integers 1..5")


def _optional_text(table: pa.Table, name: str) -> pa.Array:
    """``[m]`` large_string with empty cells as nulls (no revision / no rationale)."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.large_string())
    col = table.column(name).combine_chunks().cast(pa.large_string())
    return pc.if_else(pc.fill_null(pc.equal(col, ""), True), pa.scalar(None, pa.large_string()), col)


def _keys(columns: list[pa.Array]) -> np.ndarray:
    if len(columns) == 1:
        return hash_strings(columns[0].cast(pa.large_string()))
    return hash_strings(pc.binary_join_element_wise(*[c.cast(pa.large_string()) for c in columns], _SEP))


def import_labels(path: str | Path, replies: pa.Table, source: str = "human:import") -> pa.Table:
    """Label rows (:data:`~socius.correct.labels.LABEL_SCHEMA`, one per file row, file order) for the
    labels in ``path``, each tied to its row of ``replies`` (from ``load_replies(run_dir)``)."""
    where = Path(path)
    table = read_label_file(where)
    missing = [c for c in KEY_COLUMNS if c not in table.column_names]
    if missing:
        raise LabelError(f"{where}: missing columns {missing} (a label names its reply by "
                         f"{', '.join(KEY_COLUMNS)})")
    if "score" not in table.column_names and "revision" not in table.column_names:
        raise LabelError(f"{where}: needs a score column, a revision column or both")
    m = table.num_rows
    if m == 0:
        raise LabelError(f"{where}: no labels in the file")
    match = list(KEY_COLUMNS) + [c for c in MATCH_COLUMNS if c in table.column_names]
    file_cols = [_cast(table, c, where) for c in match]
    for c, col in zip(match, file_cols):
        if col.null_count:
            raise LabelError(f"{where}: {_rows(~np.asarray(col.is_valid()))}, column {c}: empty")
    score = _scores(table, where)
    revision = _optional_text(table, "revision")
    no_label = ~np.asarray(score.is_valid()) & ~np.asarray(revision.is_valid())
    if no_label.any():
        raise LabelError(f"{where}: {_rows(no_label)}, columns score/revision: a label needs a score or a revision")
    # find each row's reply: hash the match columns on both sides, then count candidates per key
    reply_keys = _keys([replies.column(c).combine_chunks().cast(_TYPES[c]) for c in match])
    file_keys = _keys(file_cols)
    uniq, first, counts = np.unique(reply_keys, return_index=True, return_counts=True)
    pos = np.minimum(np.searchsorted(uniq, file_keys), max(uniq.shape[0] - 1, 0))
    found = uniq[pos] == file_keys if uniq.shape[0] else np.zeros(m, bool)
    matched = replies.take(pa.array(first[pos] if uniq.shape[0] else np.zeros(0, np.int64)))
    if found.all():  # a 64-bit key collision would tie a label to another reply: compare the values too
        for c, col in zip(match, file_cols):
            found &= np.asarray(pc.fill_null(pc.equal(matched.column(c).combine_chunks().cast(_TYPES[c]), col), False))
    if not found.all():
        raise LabelError(f"{where}: {_rows(~found)}: no logged reply with this {', '.join(match)} in the run")
    many = counts[pos] > 1
    if many.any():
        raise LabelError(f"{where}: {_rows(many)}: matches several logged replies; add a completion_index or "
                         f"completion column")
    sources = _sources(table, source, where)
    parts, order = [], []
    for s in np.unique(sources):
        sel = np.flatnonzero(sources == s)
        take = pa.array(sel)
        parts.append(make_labels(matched.take(take), str(s), score=score.take(take), revision=revision.take(take),
                                 rationale=_optional_text(table, "rationale").take(take)))
        order.append(sel)
    out = pa.concat_tables(parts)
    back = np.empty(m, np.int64)
    back[np.concatenate(order)] = np.arange(m)
    return out.take(pa.array(back))


def _sources(table: pa.Table, default: str, where: Path) -> np.ndarray:
    """``[m]`` object array of each row's source (the file's, else ``default``), checked."""
    if "source" in table.column_names:
        col = table.column("source").combine_chunks().cast(pa.string())
        col = pc.if_else(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(col), ""), True), default, col)
    else:
        col = pa.array([default] * table.num_rows, pa.string())
    values = col.to_numpy(zero_copy_only=False).astype(object)
    names, inv = np.unique(values.astype(str), return_inverse=True)
    for k, s in enumerate(names):
        kind, _, name = s.partition(":")
        if kind not in SOURCE_KINDS or not name:
            raise LabelError(f"{where}: {_rows(inv.reshape(-1) == k)}, column source: {s!r} is not human:<name>, "
                             "rule:<name> or judge:<model>")
    return values
