"""This tick's rooms as a system sees them: members grouped by room, lookup by name, mentions.

A room and its members live on one rank (a group partition), so everything
here is local. :class:`Rooms` groups the agent rows of a query by room in
seat order; :meth:`Rooms.find` turns ``(room row, name)`` pairs into agent
rows; :func:`send_mentions` sends a :class:`~.components.Mention` for every
message whose first ``@Name`` is another member of the speaker's room.
"""
from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from socius.ecs import STR
from socius.ecs.storage import find_rows
from socius.text.strings import arrow_strings

from .components import Mention, Persona, Room, Seat
from .transcript import first_mention


class Rooms:
    """This tick's rooms and their members grouped by room in seat order (all on this rank).

    ``ids [r]`` room entities, ``size [r] int64``, ``row [n] int64`` the room
    row of each agent row, ``order [n]`` agent rows by (room, seat) with room
    ``j``'s members at ``order[start[j]:start[j + 1]]``.
    """

    def __init__(self, rv, av):
        self.ids = rv.ids
        self.size = np.asarray(rv[Room].size, dtype=np.int64)
        self.row = find_rows(rv.ids, av[Seat].room)[0]                # [n] room row of each agent
        self.order = np.lexsort((av[Seat].position, self.row))        # agents by (room, seat)
        self.start = np.zeros(self.ids.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(self.row, minlength=self.ids.shape[0]), out=self.start[1:])
        self._keys = arrow_strings(_keys(self.row, av[Persona].name))

    def find(self, room_row: np.ndarray, name: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(agent rows [m] int64, found [m] bool)``: the member called ``name[i]`` of room ``room_row[i]``."""
        idx = pc.index_in(arrow_strings(_keys(room_row, name)), value_set=self._keys)
        found = np.asarray(idx.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        return np.asarray(idx.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64), found


def _keys(room_row: np.ndarray, name: np.ndarray) -> np.ndarray:
    return np.strings.add(np.strings.add(room_row.astype(STR), "|"), name)


def send_mentions(ctx, av, rooms: Rooms, speaker: np.ndarray, msg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mentions in ``msg`` (said by agent rows ``speaker``): Mention messages; returns (target rows, valid)."""
    name = av[Persona].name
    target, found = rooms.find(rooms.row[speaker], first_mention(msg))
    valid = found & (target != speaker)
    if valid.any():
        s, t = speaker[valid], target[valid]
        ctx.send(Mention, sender=av.ids[s], target=av.ids[t], room=rooms.ids[rooms.row[s]], who=name[s],
                 text=msg[valid])
    return target, valid
