"""Schemas of the recommender: the users' components, the mention message, the run's resources.

A user is the standard :class:`~socius.components.profile.Profile` plus its
:class:`Traits` (activity, conformity), genre :class:`Taste`, its
:class:`Friends` (a ragged row of entity IDs), its watch :class:`History`
(three aligned ragged rows), this tick's :class:`Page` and its last
:class:`Choice`. Telling a friend about a movie is a :class:`Mention`
message, read by the friend next tick. :class:`RecState` is the shared,
saved environment (per-item counts, coverage, the mf model, the metrics
history); :class:`RecSetup` is rebuilt from the config at build and not saved.

The classes lived in ``socius.scenarios.recommender`` itself before the
package was split; each keeps that stored name (``name=``) so snapshots and
state hashes are unchanged.
"""
from __future__ import annotations

from dataclasses import field

import numpy as np

from socius.ecs import Component, Message, Ragged, Resource, Scalar, String, Vector
from socius.llm import Decision

from .config import RecommenderConfig
from .data import N_GENRES, Catalogue


class Traits(Component, name="socius.scenarios.recommender.Traits"):
    """What drives a user's behaviour besides taste (the profile itself is the standard ``Profile``)."""

    activity = Scalar(np.float32)    # chance to browse in a tick
    conformity = Scalar(np.float32)  # 0..1: how far others' average pulls the posted rating


class Taste(Component, name="socius.scenarios.recommender.Taste"):
    """Genre taste ``[20] float32`` summing to 1 (order: ``data.GENRES``)."""

    genres = Vector(np.float32, N_GENRES)


class Friends(Component, name="socius.scenarios.recommender.Friends"):
    """Entity IDs of the user's friends (who see their chats and posts), ragged ``int64``."""

    ids = Ragged(np.int64)


class History(Component, name="socius.scenarios.recommender.History"):
    """What the user watched, in order (aligned ragged rows): item index, posted rating and own opinion."""

    items = Ragged(np.int32)
    ratings = Ragged(np.float32)
    own = Ragged(np.float32)


class Page(Component, name="socius.scenarios.recommender.Page"):
    """This tick's recommendation page (item indices, best first; empty: not browsing)."""

    items = Ragged(np.int32)


class Choice(Component, name="socius.scenarios.recommender.Choice"):
    """This tick's action: item watched (-1: none), posted rating, own opinion, the average shown, sharing."""

    item = Scalar(np.int32, default=-1)
    rating = Scalar(np.float32)
    own = Scalar(np.float32)
    shown = Scalar(np.float32)       # NaN when no average was shown
    share = Scalar(np.int8)          # 0 none, 1 chat, 2 post
    outcome = Scalar(np.int8)        # decide() outcome (ok / extracted / fallback / failed)


class Mention(Message, name="socius.scenarios.recommender.Mention"):
    """A user telling a friend about a movie (via 1: a chat to one friend, 2: a post to all friends)."""

    item = Scalar(np.int32)
    rating = Scalar(np.float32)
    name = String()
    via = Scalar(np.int8)


class RecState(Resource, name="socius.scenarios.recommender.RecState"):
    """Shared environment state (saved): watch counts and rating sums per item, coverage, model, history."""

    counts: np.ndarray = None        # [M] int64 ratings per item (the data's plus the simulated ones)
    half_sums: np.ndarray = None     # [M] int64 sum of ratings in half stars
    recommended: np.ndarray = None   # [M] bool: ever on a page
    watched: np.ndarray = None       # [M] bool: ever watched in the simulation
    p: np.ndarray = None             # [U, k] float64 user factors (mf)
    q: np.ndarray = None             # [M, k] float64 item factors (mf)
    mu: float = 0.0
    fitted_at: int = -1              # tick of the last mf fit (-1: none yet)
    history: list = field(default_factory=list)  # one dict of metrics per tick (report.metrics)


class RecSetup(Resource, name="socius.scenarios.recommender.RecSetup"):
    """Rebuilt from the config at build (not saved): catalogue, texts, embeddings, faiss index, decision."""

    __snapshot__ = False
    cfg: RecommenderConfig = None
    cat: Catalogue = None
    labels: np.ndarray = None        # [M] StringDType "[id 17] Title (1994) - Drama|Romance"
    item_vecs: np.ndarray = None     # [M, d] float32 content embeddings (content recommender only)
    genre_vecs: np.ndarray = None    # [20, d] float32
    index: object = None             # VectorIndex over item_vecs
    browse: Decision = None
