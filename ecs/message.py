"""Messages between entities: columnar and double-buffered.

A message type is a schema like a component::

    class Chat(Message):
        text = String()
        topic = Scalar(np.int32)

Systems send with ``ctx.send(Chat, sender=ids, target=ids, text=...)`` during
tick ``t``; the batch becomes readable with ``ctx.read(Chat)`` during tick
``t + 1`` only (the inbox is replaced when tick ``t + 1`` ends). Every
message carries ``tick``, ``sender``, ``target`` (``-1`` = no single target)
and ``seq`` (the sender's running count within the tick). The inbox is sorted
by ``(tick, sender, seq)``: the order never depends on which system, batch,
rank or storage order produced the messages. Payload columns may be scalars,
vectors, strings or entity references (``Scalar(np.int64)`` holding IDs).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .component import Schema
from .errors import UnknownComponentError

HEADER = ("tick", "sender", "target", "seq")


class Message(Schema):
    """Base class of message schemas."""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        clash = set(HEADER) & set(cls.__columns__)
        if clash:
            from .errors import SchemaError
            raise SchemaError(f"{cls.__qualname__}: column names {sorted(clash)} are reserved for the message header")


class MessageBatch:
    """One tick's messages of one type, sorted by ``(tick, sender, seq)``.

    ``tick, sender, target, seq``: ``[m] int64``; payload columns as declared.
    """

    def __init__(self, kind: type[Message], header: dict[str, np.ndarray], payload: dict[str, Any]):
        self.kind = kind
        self.tick, self.sender, self.target, self.seq = (header[k] for k in HEADER)
        self.payload = payload

    @classmethod
    def empty(cls, kind: type[Message]) -> "MessageBatch":
        z = np.zeros(0, dtype=np.int64)
        return cls(kind, {k: z for k in HEADER}, {k: c.empty(0) for k, c in kind.columns().items()})

    def __len__(self) -> int:
        return self.sender.shape[0]

    def __getattr__(self, name: str):
        payload = self.__dict__.get("payload", {})
        if name in payload:
            return payload[name]
        raise AttributeError(f"{self.__dict__.get('kind', Message).__qualname__} message has no column {name!r}")

    def column(self, name: str):
        if name in HEADER:
            return getattr(self, name)
        if name not in self.payload:
            raise UnknownComponentError(f"{self.kind.__qualname__} has no column {name!r}")
        return self.payload[name]

    def take(self, idx: np.ndarray) -> "MessageBatch":
        cols = self.kind.columns()
        return MessageBatch(self.kind, {k: getattr(self, k)[idx] for k in HEADER},
                            {k: cols[k].take(v, idx) for k, v in self.payload.items()})

    def by_target(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Group by target: ``(targets [u], offsets [u+1], order [m])``.

        Messages for ``targets[j]`` are ``order[offsets[j]:offsets[j+1]]`` and
        keep the ``(tick, sender, seq)`` order within each target.
        """
        order = np.argsort(self.target, kind="stable")
        t = self.target[order]
        targets, starts = np.unique(t, return_index=True)
        offsets = np.append(starts, t.shape[0]).astype(np.int64)
        return targets, offsets, order


class MessageBus:
    """Outboxes being written this tick and inboxes readable this tick, per type."""

    def __init__(self):
        self.outbox: dict[type[Message], list] = {}
        self.inbox: dict[type[Message], MessageBatch] = {}

    def send(self, kind: type[Message], tick: int, /, sender, target=None, **payload) -> None:
        sender = np.asarray(sender, dtype=np.int64).reshape(-1)
        m = sender.shape[0]
        if target is None:
            target = np.full(m, -1, dtype=np.int64)
        else:
            target = np.asarray(target, dtype=np.int64)
            target = np.broadcast_to(target, (m,)).copy() if target.ndim == 0 else target
            if target.shape != (m,):
                from .errors import ColumnShapeError
                raise ColumnShapeError(f"{kind.__qualname__}.target: expected shape ({m},), got {target.shape}")
        values = kind.coerce_values(payload, m)
        self.outbox.setdefault(kind, []).append((sender, target, values))

    def flip(self, tick: int) -> None:
        """End of tick ``tick``: outboxes become the inboxes for tick ``tick + 1``."""
        inbox = {}
        for kind, parts in self.outbox.items():
            cols = kind.columns()
            sender = np.concatenate([p[0] for p in parts])
            target = np.concatenate([p[1] for p in parts])
            payload = {k: c.concat([p[2][k] for p in parts]) for k, c in cols.items()}
            order = np.argsort(sender, kind="stable")  # stable: send order within a sender
            sender, target = sender[order], target[order]
            payload = {k: cols[k].take(v, order) for k, v in payload.items()}
            starts = np.flatnonzero(np.r_[True, sender[1:] != sender[:-1]]) if sender.shape[0] else np.zeros(0, np.int64)
            run = np.repeat(starts, np.diff(np.r_[starts, sender.shape[0]]))
            seq = np.arange(sender.shape[0], dtype=np.int64) - run
            header = {"tick": np.full(sender.shape[0], tick, dtype=np.int64), "sender": sender,
                      "target": target, "seq": seq}
            inbox[kind] = MessageBatch(kind, header, payload)
        self.outbox = {}
        self.inbox = inbox

    def read(self, kind: type[Message]) -> MessageBatch:
        return self.inbox.get(kind) or MessageBatch.empty(kind)
