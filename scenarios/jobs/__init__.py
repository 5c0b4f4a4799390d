"""Job market (GenSim §2.1): seekers search a job board, apply, interview, get offers, accept or decline.

Seekers (CV, skills, experience, education, expected salary, location) and
employers with openings (title, requirements, minimum experience, salary
band) are drawn from declared distributions (``[population.*]`` specs). The
job board is a faiss :class:`~socius.text.vector_index.VectorIndex` over
the open ads' embeddings (the hashing embedder by default, the real
``all-MiniLM-L6-v2`` with ``embedder = "minilm"``), rebuilt every tick from
the open openings of all ranks.

Every tick every stage of the hiring pipeline runs for whatever reached it
— apply, screen and invite, answer, offer, accept or decline — each one
batched LLM call; messages sent in tick *t* are read in *t + 1*, so one
application takes five ticks from ad to hire. Seekers and openings interact
only through messages (``Application``, ``Invite``, ``Answer``, ``Offer``,
``Reply``), so they may sit on different ranks; an employer and its
openings are one group (one rank).

Modules: :mod:`.components` (schemas, messages, resources), :mod:`.config`
(options and default population specs), :mod:`.data` (fields, skills,
names), :mod:`.market` (column helpers), :mod:`.prompts` (the decisions'
text), :mod:`.systems` (the tick, stage by stage), :mod:`.scenario` (build
and registration), :mod:`.report` (metrics, tables and ``jobs_ticks.png``),
:mod:`.mock` (the mock engine's policy).
"""
from . import market, prompts
from .components import (COUNTERS, DIM, Answer, Application, Employer, Invite, JobMarket, JobsRuntime, Offer,
                         Opening, Reply, Search, Seeker, Vacancy)
from .config import DEFAULT_OPENINGS, DEFAULT_SEEKERS, JobsConfig
from .mock import jobs_policy
from .report import metrics, report
from .scenario import SCENARIO, build, make_decisions
from .systems import (answer_interviews, close_hires, decide_offers, post_jobs, record_market, respond_to_offers,
                      screen_applications, search_and_apply, start_tick)

__all__ = ["SCENARIO", "JobsConfig", "DEFAULT_SEEKERS", "DEFAULT_OPENINGS", "DIM", "COUNTERS",
           "Seeker", "Search", "Employer", "Opening", "Vacancy", "Application", "Invite", "Answer", "Offer", "Reply",
           "JobMarket", "JobsRuntime", "build", "make_decisions", "metrics", "report", "jobs_policy",
           "start_tick", "respond_to_offers", "close_hires", "decide_offers", "answer_interviews",
           "screen_applications", "post_jobs", "search_and_apply", "record_market", "market", "prompts"]
