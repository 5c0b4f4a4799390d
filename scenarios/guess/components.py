"""Schemas of the guess game: the players' components and the run's resources.

A player is a :class:`Profile` (shown in its prompt), a :class:`Team` (its
group in the group game) and this round's :class:`Guess`; which LLM it asks
is the shared ``socius.components.ModelChoice``. :class:`GuessGame` holds the
game's parameters and everything the rounds record (saved in snapshots);
:class:`GuessPrompts` the run's two decisions (rebuilt from the config).

The classes lived in ``socius.scenarios.guess`` itself before the package
was split; each keeps that stored name (``name=``) so snapshots and state
hashes are unchanged.
"""
from __future__ import annotations

from dataclasses import field

import numpy as np

from socius.ecs import Component, Resource, Scalar, String
from socius.llm import Decision


class Profile(Component, name="socius.scenarios.guess.Profile"):
    """A player's public profile, shown in its prompt."""

    name = String()
    gender = String()
    age = Scalar(np.int32)
    education = String()
    occupation = String()
    background = String()


class Team(Component, name="socius.scenarios.guess.Team"):
    """Group index in the group game (``-1`` in the individual game)."""

    group = Scalar(np.int32, default=-1)


class Guess(Component, name="socius.scenarios.guess.Guess"):
    """This round's reported number (``float64``, NaN for a fallback) and how the reply was obtained
    (``int8``, see ``socius.llm.Outcome``)."""

    value = Scalar(np.float64)
    outcome = Scalar(np.int8)


class GuessGame(Resource, name="socius.scenarios.guess.GuessGame"):
    """Game parameters and the history every round adds to (saved in snapshots)."""

    p: float = 2 / 3
    nash: float = 0.0
    offset: float = 0.0
    max_value: int = 100
    groups: int = 0
    tolerance: float = 0.0
    history: list = field(default_factory=list)           # one dict of statistics per round
    winners_by: list = field(default_factory=list)        # rows: round, model, group, winners
    group_numbers: list = field(default_factory=list)     # per round: [k] group means
    histograms: list = field(default_factory=list)        # per round: counts of numbers rounded to 0..max_value


class GuessPrompts(Resource, name="socius.scenarios.guess.GuessPrompts"):
    """The two decisions of a run (first round, later rounds); rebuilt from the config, not saved."""

    __snapshot__ = False
    first: Decision = None
    later: Decision = None
