"""Schemas of the job market: seekers, employers and openings, the messages between them, the run's resources.

A seeker is a :class:`Seeker` (profile, CV text and its embedding) and its
:class:`Search` (searching or employed, what it applied to). An employer is
one :class:`Employer`; each of its openings an :class:`Opening` (the ad and
its embedding) and a :class:`Vacancy` (open or filled, the outstanding
offer). Seekers and openings talk only through the five messages
(:class:`Application` → :class:`Invite` → :class:`Answer` → :class:`Offer`
→ :class:`Reply`), so they may live on different ranks.

:class:`JobMarket` is saved in snapshots (parameters and the per-tick
history); :class:`JobsRuntime` is a plain resource rebuilt by the build.

The classes lived in ``socius.scenarios.jobs`` itself before the package was
split; each keeps that stored name (``name=``) so snapshots and state hashes
are unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from socius.ecs import STR, Component, Message, Ragged, Resource, Scalar, String, Vector
from socius.llm import Decision
from socius.text.vector_index import VectorIndex

DIM = 384  # both embedders: all-MiniLM-L6-v2 and the hashing embedder at its default width
#: This tick's event counters in :attr:`JobsRuntime.tick` (reduced over ranks by ``record_market``).
COUNTERS = ("applications", "invites", "answers", "offers", "accepted", "declined", "hires")


class Seeker(Component, name="socius.scenarios.jobs.Seeker"):
    """A job seeker's profile, CV text and CV embedding ``[DIM] float32``."""

    name = String()
    field = String()
    skills = String()
    experience = Scalar(np.int32)
    education = String()
    location = String()
    expected = Scalar(np.float64)      # k a year
    cv = String()
    embedding = Vector(np.float32, DIM)


class Search(Component, name="socius.scenarios.jobs.Search"):
    """Where a seeker stands: searching (0) or employed (1), what it applied to, and its counts."""

    status = Scalar(np.int8)
    applied = Ragged(np.int64)         # opening IDs
    applications = Scalar(np.int32)
    invites = Scalar(np.int32)
    offers = Scalar(np.int32)
    declined = Scalar(np.int32)
    job = Scalar(np.int64, default=-1)
    salary = Scalar(np.float64)
    hired_tick = Scalar(np.int32, default=-1)


class Employer(Component, name="socius.scenarios.jobs.Employer"):
    """A firm: name, sector, city, number of openings."""

    name = String()
    sector = String()
    location = String()
    openings = Scalar(np.int32)


class Opening(Component, name="socius.scenarios.jobs.Opening"):
    """A job ad: owner, title, requirements, minimum experience, salary band, ad text and embedding."""

    employer = Scalar(np.int64)
    employer_name = String()
    title = String()
    field = String()
    requirements = String()
    location = String()
    min_experience = Scalar(np.int32)
    low = Scalar(np.float64)
    high = Scalar(np.float64)
    ad = String()
    embedding = Vector(np.float32, DIM)


class Vacancy(Component, name="socius.scenarios.jobs.Vacancy"):
    """An opening's state: open (0) or filled (1), the outstanding offer, counts, the hire."""

    status = Scalar(np.int8)
    offer_to = Scalar(np.int64, default=-1)
    applicants = Scalar(np.int32)
    invited = Scalar(np.int32)
    offers = Scalar(np.int32)
    declined = Scalar(np.int32)
    hired = Scalar(np.int64, default=-1)
    filled_tick = Scalar(np.int32, default=-1)


class Application(Message, name="socius.scenarios.jobs.Application"):
    """Seeker → opening."""

    name = String()
    cv = String()
    experience = Scalar(np.int32)
    expected = Scalar(np.float64)
    match = Scalar(np.float64)


class Invite(Message, name="socius.scenarios.jobs.Invite"):
    """Opening → seeker: the ad and the interview question."""

    job = String()
    question = String()


class Answer(Message, name="socius.scenarios.jobs.Answer"):
    """Seeker → opening: the interview answer, with what the employer needs to decide."""

    name = String()
    cv = String()
    experience = Scalar(np.int32)
    expected = Scalar(np.float64)
    answer = String()


class Offer(Message, name="socius.scenarios.jobs.Offer"):
    """Opening → seeker."""

    job = String()
    salary = Scalar(np.float64)


class Reply(Message, name="socius.scenarios.jobs.Reply"):
    """Seeker → opening: accepted (1) or declined (0)."""

    accepted = Scalar(np.int8)
    salary = Scalar(np.float64)


class JobMarket(Resource, name="socius.scenarios.jobs.JobMarket"):
    """Parameters and the per-tick history of the market's measures (saved in snapshots)."""

    search_k: int = 5
    shortlist: int = 6
    max_invites: int = 3
    history: list = field(default_factory=list)


@dataclass
class JobsRuntime:
    """Decisions, the embedder, the job board and this tick's counters (a plain resource: not saved —
    the board is rebuilt from the openings every tick, the counters live one tick).

    ``board_ids [b] int64`` (ascending) and ``board_ads [b] StringDType`` are
    the open openings of every rank the board was built from.
    """

    apply: Decision
    screen: Decision
    answer: Decision
    offer: Decision
    respond: Decision
    embedder: object
    index_kind: str = "flat"
    board: VectorIndex | None = None
    board_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    board_ads: np.ndarray = field(default_factory=lambda: np.zeros(0, STR))
    tick: dict = field(default_factory=dict)

    def count(self, name: str, n) -> None:
        """Add ``n`` to this tick's counter ``name``."""
        self.tick[name] = self.tick.get(name, 0) + int(n)

    def add(self, name: str, values: np.ndarray) -> None:
        """Collect ``values`` (float64) under ``name`` for this tick's means."""
        self.tick.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
