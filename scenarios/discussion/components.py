"""Schemas of the group discussion: agents, rooms, mentions and the run's resources.

An agent is a :class:`Persona` (shown in its prompts), a :class:`Seat` (its
room's entity ID, room number and seat), a :class:`Stance` (1..5), its
:class:`Talk` counters and an :class:`Inbox`. A room is a :class:`Room`
entity: a nested environment holding its statement, members and this
round's transcript. A :class:`Mention` carries an ``@Name`` to the agent it
addresses. :class:`DiscussionState` (saved in snapshots) holds the mode and
the per-round measures; :class:`DiscussionRuntime` (a plain resource, not
saved) the decisions, cost rows and utterance log.

The classes lived in ``socius.scenarios.discussion`` itself before the
package was split; each keeps that stored name (``name=``) so snapshots and
state hashes are unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from socius.ecs import Component, Message, Resource, Scalar, String
from socius.llm import Decision

#: ``[5] int64`` the stance levels 1 (strongly disagree) … 5 (strongly agree).
LEVELS = np.arange(1, 6)


class Persona(Component, name="socius.scenarios.discussion.Persona"):
    """Who an agent is, as its prompts show it (names are unique within a room)."""

    name = String()
    age = Scalar(np.int32)
    occupation = String()
    leaning = String()


class Seat(Component, name="socius.scenarios.discussion.Seat"):
    """The agent's room (entity ID), room number and seat in it."""

    room = Scalar(np.int64, default=-1)
    index = Scalar(np.int32, default=-1)
    position = Scalar(np.int32)


class Stance(Component, name="socius.scenarios.discussion.Stance"):
    """Stance on the room's statement, 1..5: first poll, before this round, now; and how the reply came."""

    initial = Scalar(np.int8, default=3)
    before = Scalar(np.int8, default=3)
    value = Scalar(np.int8, default=3)
    outcome = Scalar(np.int8)


class Talk(Component, name="socius.scenarios.discussion.Talk"):
    """Utterances and words so far, utterances this round, mentions made and received."""

    utterances = Scalar(np.int32)
    words = Scalar(np.int64)
    round_utterances = Scalar(np.int32)
    round_mentions = Scalar(np.int32)
    mentions_made = Scalar(np.int32)
    mentions_received = Scalar(np.int32)


class Inbox(Component, name="socius.scenarios.discussion.Inbox"):
    """Mentions that reached the agent last tick (the latest one's author and text)."""

    count = Scalar(np.int32)
    who = String()
    said = String()


class Room(Component, name="socius.scenarios.discussion.Room"):
    """One room: a nested environment with its statement, members and this round's transcript."""

    index = Scalar(np.int32)
    statement = String()
    members = String()
    size = Scalar(np.int32)
    transcript = String()
    lines = Scalar(np.int32)


class Mention(Message, name="socius.scenarios.discussion.Mention"):
    """``@Name`` in a message: sent to the addressed agent, filed in its Inbox next tick."""

    room = Scalar(np.int64)
    who = String()
    text = String()


class DiscussionState(Resource, name="socius.scenarios.discussion.DiscussionState"):
    """Mode, turns and the per-round history of the deterministic measures (saved in snapshots)."""

    mode: str = "agent"
    turns: int = 8
    transcript_chars: int = 2400
    history: list = field(default_factory=list)


@dataclass
class DiscussionRuntime:
    """Decisions (``speak[t]`` for turn ``t``: the response log keeps one file per decision and tick),
    per-round cost rows, the tick clock and the utterance log (a plain resource: not saved; cost and
    wall time vary between runs and machines, so they stay out of the state hash)."""

    speak: list
    script: Decision
    poll_first: Decision
    poll_after: Decision
    cost: list = field(default_factory=list)
    utterances: list = field(default_factory=list)   # per tick: dict of columns
    tick_start: float = 0.0
    stats_seen: int = 0
