"""Labelling from the browser: a queue of logged replies, and labels validated before one atomic write.

Every logged completion gets a ``reply_id``: 16 hex digits of the XXH64 of
its identity in the response log (run, tick, decision, call kind, entity,
prompt hash, completion index) — stable however often the log is read, so a
page can hold it across requests. The queue orders the ``answer`` rows with
a policy of :mod:`socius.correct.sampling` (``uniform``, ``per-decision``,
``per-cohort:K:EXPR``, ``outcome-first``, with ``cap:N``) and skips replies
the same labeller has already labelled. :func:`parse_labels` checks a whole
posted batch (name, reply ids, scores 1–5, revisions) and raises
:class:`BadLabels` naming the first bad item before anything is written;
the batch then goes to :class:`socius.correct.LabelStore` as one part, with
source ``human:<name>``: all of it is stored or none.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.text.hashing import hash_strings

__all__ = ["BadLabels", "already_labelled", "parse_labels", "queue", "reply_rows", "with_reply_ids"]

MAX_BATCH = 1000
MAX_TEXT = 20_000
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_IDENTITY = ("run", "tick", "decision", "kind", "entity", "prompt_hash", "completion_index")
_LABEL_KEY = ("tick", "decision", "kind", "entity", "prompt_hash", "completion")
_SEP = pa.scalar("\x1f", pa.large_string())


class BadLabels(ValueError):
    """A posted label batch that cannot be stored (the API answers 400 with the message)."""


def _hex(h: np.ndarray) -> pa.Array:
    return pa.array(np.char.mod("%016x", h.view(np.uint64)).astype(object), pa.string())


def _key(table: pa.Table, cols) -> np.ndarray:
    joined = pc.binary_join_element_wise(*[table.column(c).cast(pa.large_string()) for c in cols], _SEP)
    return hash_strings(joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined)


def with_reply_ids(replies: pa.Table) -> pa.Table:
    """``replies`` (from :func:`socius.correct.load_replies`) with a ``reply_id`` string column."""
    if replies.num_rows == 0:
        return replies.append_column("reply_id", pa.array([], pa.string()))
    return replies.append_column("reply_id", _hex(_key(replies, _IDENTITY)))


def reply_rows(replies: pa.Table, reply_ids: list[str]) -> np.ndarray:
    """Row indices of ``reply_ids`` in ``replies``; :class:`BadLabels` names the first unknown one."""
    ids = replies.column("reply_id").to_numpy(zero_copy_only=False).astype(str)
    order = np.argsort(ids, kind="stable")
    ordered = ids[order]
    want = np.asarray(reply_ids, dtype=str)
    pos = np.minimum(np.searchsorted(ordered, want), max(ids.shape[0] - 1, 0))
    found = (ordered[pos] == want) if ids.shape[0] else np.zeros(want.shape[0], bool)
    if not found.all():
        bad = int(np.flatnonzero(~found)[0])
        raise BadLabels(f"labels[{bad}]: no logged reply with id {reply_ids[bad]!r} in this run")
    return order[pos]


def already_labelled(replies: pa.Table, labels: pa.Table, source: str) -> np.ndarray:
    """``[m] bool``: the replies that ``source`` has labelled (matched on tick, decision, kind,
    entity, prompt hash and completion text)."""
    if labels.num_rows == 0 or replies.num_rows == 0:
        return np.zeros(replies.num_rows, bool)
    mine = labels.filter(pc.equal(labels.column("source"), source))
    if mine.num_rows == 0:
        return np.zeros(replies.num_rows, bool)
    return np.isin(_key(replies, _LABEL_KEY), _key(mine, _LABEL_KEY))


def queue(replies: pa.Table, labels: pa.Table, name: str, policy: str = "uniform", k: int = 20, seed: int = 0,
          world=None) -> pa.Table:
    """Up to ``k`` ``answer`` replies for ``human:<name>`` to label, in the policy's order (see module doc)."""
    from socius.correct import LabelError
    from socius.correct.sampling import parse_spec, sample

    check_name(name)
    if not 1 <= k <= MAX_BATCH:
        raise BadLabels(f"queue: k must be 1..{MAX_BATCH}, got {k}")
    answers = replies.filter(pc.and_(pc.equal(replies.column("kind"), "answer"),
                                     pc.equal(replies.column("error"), "")))
    done = already_labelled(answers, labels, f"human:{name}")
    todo = answers.filter(pa.array(~done))
    spec = policy.strip()
    if ":" not in spec.split(",")[0]:  # "uniform" → "uniform:<all>"; the queue cuts to k after skipping
        head, _, rest = spec.partition(",")
        spec = f"{head}:{todo.num_rows}" + (f",{rest}" if rest else "")
    try:
        parsed = parse_spec(spec)
        parsed["k"] = max(int(parsed["k"]), 0)
        rows = sample(todo, parsed, seed=seed, world=world)
    except LabelError as e:
        raise BadLabels(f"queue: {e}") from None
    return todo.take(pa.array(rows[:k], pa.int64()))


def check_name(name) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise BadLabels(f"name {name!r}: give 1–64 letters, digits or _.@- (it becomes the source human:<name>)")
    return name


def parse_labels(body) -> tuple[str, list[str], list, list, list]:
    """``(name, reply_ids, scores, revisions, rationales)`` from a posted JSON body::

        {"name": "ada", "labels": [{"reply": "<reply_id>", "score": 4, "revision": null, "rationale": "…"}]}

    Raises :class:`BadLabels` naming the first bad field; nothing is written by this function."""
    if not isinstance(body, dict):
        raise BadLabels("body must be a JSON object {name, labels: [...]}")
    unknown = set(body) - {"name", "labels"}
    if unknown:
        raise BadLabels(f"unknown fields {sorted(unknown)} (expected name, labels)")
    name = check_name(body.get("name"))
    items = body.get("labels")
    if not isinstance(items, list) or not items:
        raise BadLabels("labels must be a non-empty list")
    if len(items) > MAX_BATCH:
        raise BadLabels(f"labels: at most {MAX_BATCH} per request, got {len(items)}")
    ids, scores, revisions, rationales = [], [], [], []
    for i, item in enumerate(items):
        where = f"labels[{i}]"
        if not isinstance(item, dict):
            raise BadLabels(f"{where}: must be an object")
        extra = set(item) - {"reply", "score", "revision", "rationale"}
        if extra:
            raise BadLabels(f"{where}: unknown fields {sorted(extra)}")
        reply = item.get("reply")
        if not isinstance(reply, str) or not re.fullmatch(r"[0-9a-f]{16}", reply):
            raise BadLabels(f"{where}.reply: must be a reply id (16 hex digits), got {reply!r}")
        score = item.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5):
            raise BadLabels(f"{where}.score: must be an integer 1..5 or null, got {score!r}")
        texts = []
        for field in ("revision", "rationale"):
            v = item.get(field)
            if v is not None and not isinstance(v, str):
                raise BadLabels(f"{where}.{field}: must be a string or null")
            if v is not None and len(v) > MAX_TEXT:
                raise BadLabels(f"{where}.{field}: longer than {MAX_TEXT} characters")
            texts.append(v if v and v.strip() else None)
        if score is None and texts[0] is None:
            raise BadLabels(f"{where}: give a score (1..5) or a revision")
        ids.append(reply)
        scores.append(score)
        revisions.append(texts[0])
        rationales.append(texts[1])
    if len(set(ids)) != len(ids):
        raise BadLabels("labels: the same reply appears twice in one batch")
    return name, ids, scores, revisions, rationales


def store_labels(source, body) -> pa.Table:
    """Validate ``body`` (see :func:`parse_labels`) against ``source``'s replies and append it to the
    run's label store as one part; returns the rows written."""
    from socius.correct import LabelError, make_labels

    name, ids, scores, revisions, rationales = parse_labels(body)
    replies = source.replies()
    rows = reply_rows(replies, ids)
    try:
        table = make_labels(replies.take(pa.array(rows, pa.int64())), f"human:{name}", score=scores,
                            revision=revisions, rationale=rationales)
        source.label_store().append(table)
    except LabelError as e:
        raise BadLabels(str(e)) from None
    return table
