"""Schemas of the social-network scenario: the agents' components, the post message, the run's resources.

An agent is a :class:`Profile` (shown in its prompt), its :class:`Follows`
(a ragged row of the IDs it follows), its :class:`Mood` (emotion, stance,
since when it knows of the event), its :class:`Inbox` (what it read this
tick) and its last :class:`Action`. A post or forward is one :class:`Post`
message with no single target: followers pick posts out by sender ID.

The classes lived in ``socius.scenarios.social`` itself before the package
was split; each keeps that stored name (``name=``) so snapshots and state
hashes are unchanged.
"""
from __future__ import annotations

from dataclasses import field

import numpy as np

from socius.ecs import Component, Message, Ragged, Resource, Scalar, String, Vector
from socius.llm import Decision

MAX_SHOWN = 3                 # posts a prompt can show (the Inbox.shown width)
NEWS_CONTENT = 0              # content ID of the news item; posts get tick * 2**40 + author
TEXT_CHARS = 140              # longest post text kept


class Profile(Component, name="socius.scenarios.social.Profile"):
    """A user's public profile, shown in its prompt."""

    name = String()
    age = Scalar(np.int32)
    occupation = String()
    trait = String()


class Follows(Component, name="socius.scenarios.social.Follows"):
    """``ids``: the agents this agent follows (it sees their posts)."""

    ids = Ragged(np.int64)


class Mood(Component, name="socius.scenarios.social.Mood"):
    """``emotion`` 0 calm / 1 moderate / 2 intense; ``attitude`` stance on the event in [-1, 1];
    ``aware_since`` the tick the agent heard of the event (-1: not yet)."""

    emotion = Scalar(np.int8)
    attitude = Scalar(np.float32)
    aware_since = Scalar(np.int32, default=-1)


class Inbox(Component, name="socius.scenarios.social.Inbox"):
    """What the agent read this tick: number of posts, the authors of the first ``MAX_SHOWN`` of them
    (``[n, MAX_SHOWN]``, ``-1``: none), their average stance and strongest mood; ``news``: it got the
    news item this tick."""

    received = Scalar(np.int32)
    shown = Vector(np.int64, MAX_SHOWN, default=-1)
    avg_attitude = Scalar(np.float32)
    peak = Scalar(np.int8)
    news = Scalar(np.bool_)


class Action(Component, name="socius.scenarios.social.Action"):
    """The agent's last decision: ``kind`` 0 idle / 1 post / 2 forward, at ``tick`` (-1: never),
    the ``content`` ID it posted or forwarded (-1: none) and the reply's ``outcome`` (see ``Outcome``)."""

    kind = Scalar(np.int8)
    tick = Scalar(np.int32, default=-1)
    content = Scalar(np.int64, default=-1)
    outcome = Scalar(np.int8)


class Post(Message, name="socius.scenarios.social.Post"):
    """A post or forward, seen by the author's followers next tick: ``content`` ID (the news item is
    ``0``, a post ``tick * 2**40 + author``; a forward keeps the forwarded content's ID), ``action``
    1 post / 2 forward, the author's emotion and attitude, and the text."""

    content = Scalar(np.int64)
    action = Scalar(np.int8)
    emotion = Scalar(np.int8)
    attitude = Scalar(np.float32)
    text = String()


class SocialEvent(Resource, name="socius.scenarios.social.SocialEvent"):
    """The news event and the run's behaviour parameters (saved in snapshots)."""

    headline: str = ""
    event_tick: int = 0
    seeds: list = field(default_factory=list)   # global agent IDs that get the news first
    news_stance: float = 0.0
    news_emotion: int = 1
    shown_posts: int = MAX_SHOWN
    react: float = 0.8
    activity: float = 0.05
    relax: float = 0.3
    bins: int = 10


class SocialStats(Resource, name="socius.scenarios.social.SocialStats"):
    """One row of metrics per tick (saved in snapshots)."""

    history: list = field(default_factory=list)


class SocialPrompts(Resource, name="socius.scenarios.social.SocialPrompts"):
    """The decision of a run; rebuilt from the config, not saved."""

    __snapshot__ = False
    decision: Decision = None
    dedup: bool = False
