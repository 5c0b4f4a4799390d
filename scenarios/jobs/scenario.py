"""Build and registration of ``socius run jobs``.

:func:`build` draws this rank's seekers, employers and openings from the
config's population specs (every draw keyed by entity ID, an employer and
its openings in one group of the partition, so a seed gives the same market
on any number of ranks), writes their CVs and ads, embeds them, inserts the
market's resources and adds the systems in schedule order.
:func:`make_decisions` builds the five LLM decisions of a run.
:data:`SCENARIO` is what the registry finds under ``jobs``.
"""
from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from socius.app.registry import Scenario
from socius.ecs import STR, EntityRng, World
from socius.llm import Decision, JsonReply, Number, Sampling, Template, Text
from socius.mpi import Ranks, group_partition, world_ranks
from socius.population import sample_population
from socius.systems import apply_interventions, ensure_environment, schedule_interventions
from socius.text.embed import make_embedder

from . import prompts
from .components import DIM, Employer, JobMarket, JobsRuntime, Opening, Search, Seeker, Vacancy
from .config import JobsConfig
from .data import FIELDS, FIRM_KIND, FIRMS, FIRST, LAST
from .judges import JUDGES
from .market import A, cat, money
from .mock import jobs_policy
from .report import metrics, report
from .systems import (answer_interviews, close_hires, decide_offers, post_jobs, record_market, respond_to_offers,
                      screen_applications, search_and_apply, start_tick)


def make_decisions(cfg: JobsConfig) -> dict[str, Decision]:
    """The run's decisions by stage: ``apply``, ``screen``, ``answer``, ``offer``, ``respond``."""
    s = Sampling(temperature=cfg.temperature, max_tokens=cfg.max_tokens, stop=("\n",))
    short = Sampling(temperature=cfg.temperature, max_tokens=24, stop=("\n",))
    listed = Sampling(temperature=cfg.temperature, max_tokens=24, stop=("\n",),
                      structured={"regex": prompts.APPLY_REGEX})
    screened = Sampling(temperature=cfg.temperature, max_tokens=cfg.max_tokens, stop=("\n",),
                        structured={"regex": prompts.SCREEN_REGEX})
    return {
        "apply": Decision("apply", Template(prompts.APPLY), JsonReply(apply=Text()), fallback={"apply": ""},
                          sampling=listed),
        "screen": Decision("screen", Template(prompts.SCREEN), JsonReply(invite=Text(), question=Text()),
                           fallback={"invite": "", "question": "Why do you want this job?"}, sampling=screened),
        "answer": Decision("answer", Template(prompts.ANSWER, untrusted=("question",)), JsonReply(answer=Text()),
                           fallback={"answer": "I am very interested in the role."}, sampling=s),
        "offer": Decision("offer", Template(prompts.OFFER), JsonReply(offer=Number(0, 12, integer=True),
                                                                     salary=Number(0, 1000)),
                          fallback={"offer": 0, "salary": 0.0}, sampling=short),
        "respond": Decision("respond", Template(prompts.RESPOND), JsonReply(accept=Number(0, 12, integer=True)),
                            fallback={"accept": 0}, sampling=short),
    }


def _names(ids: np.ndarray, seed: int, stream: str, table: list) -> np.ndarray:
    """``[n] StringDType``: one entry of ``table`` per ID, drawn keyed by (seed, stream, ID)."""
    u = EntityRng(seed, stream, 0).random(ids)
    return np.array(table, dtype=STR)[np.minimum((u * len(table)).astype(np.int64), len(table) - 1)]


def build(world: World, cfg: JobsConfig) -> None:
    """Seekers, employers and their openings on this rank (an employer and its openings in one group)."""
    cfg.validate()
    n_s, n_e, m = cfg.agents, cfg.employers, cfg.openings_per_employer
    seeker_ids = np.arange(n_s, dtype=np.int64)
    employer_ids = n_s + np.arange(n_e, dtype=np.int64)
    opening_ids = n_s + n_e + np.arange(n_e * m, dtype=np.int64)
    owner = employer_ids[np.arange(n_e * m) // m]
    ranks = world_ranks(world)
    held = world.resource(Ranks)
    if held.partition is None:
        held.partition = group_partition(np.r_[seeker_ids, employer_ids, opening_ids],
                                         np.r_[seeker_ids, employer_ids, owner], ranks.size)
    mine = lambda ids: ids[held.partition.owner_of(ids) == ranks.rank]  # noqa: E731
    embedder = make_embedder(cfg.embedder, dim=DIM)
    world.insert_resource(JobMarket(search_k=cfg.search_k, shortlist=cfg.shortlist, max_invites=cfg.max_invites))
    world.insert_resource(JobsRuntime(**make_decisions(cfg), embedder=embedder, index_kind=cfg.index))
    # seekers
    ids = mine(seeker_ids)
    c = sample_population(cfg.seeker_specs(), ids, world.seed)
    name = cat(_names(ids, world.seed, "jobs:first", FIRST), " ", _names(ids, world.seed, "jobs:last", LAST))
    expected = np.round(c["expected_salary"].astype(np.float64) * (1 + 0.02 * c["experience"]) * 2) / 2
    cv = Template(prompts.CV).render({k: c[k] for k in ("experience", "field", "skills", "location", "education")},
                                     ids.shape[0])
    world.spawn(ids.shape[0], {
        Seeker: {"name": name, "field": c["field"].astype(STR), "skills": c["skills"].astype(STR),
                 "experience": c["experience"].astype(np.int32), "education": c["education"].astype(STR),
                 "location": c["location"].astype(STR), "expected": expected, "cv": cv,
                 "embedding": embedder.embed(cv)},
        Search: {}}, ids=ids)
    # employers: named after a firm and the sector of their first opening (drawn for every ID on every rank)
    o_all = sample_population(cfg.opening_specs(), opening_ids, world.seed)
    sector = o_all["field"][np.arange(n_e) * m].astype(STR)
    kind = np.array([FIRM_KIND[f] for f in FIELDS] + ["Group"], dtype=STR)   # a sector of one's own: "Group"
    k_of = np.asarray(pc.index_in(A(sector), value_set=A(FIELDS)).fill_null(len(FIELDS))
                      .to_numpy(zero_copy_only=False), dtype=np.int64)
    all_firms = cat(_names(employer_ids, world.seed, "jobs:firm", FIRMS), " ", kind[k_of])
    e_ids = mine(employer_ids)
    e_rows = e_ids - n_s
    world.spawn(e_ids.shape[0], {Employer: {"name": all_firms[e_rows], "sector": sector[e_rows],
                                            "location": o_all["location"][e_rows * m].astype(STR),
                                            "openings": np.full(e_ids.shape[0], m, np.int32)}}, ids=e_ids)
    # openings
    o_ids = mine(opening_ids)
    rows = o_ids - opening_ids[0]
    o = {k: v[rows] for k, v in o_all.items()}
    employer_name = all_firms[rows // m]
    low = np.round(o["salary_low"].astype(np.float64) * 2) / 2
    high = np.round(low * 1.25 * 2) / 2
    ad = Template(prompts.AD).render({"title": o["title"], "employer": employer_name, "location": o["location"],
                                      "requirements": o["requirements"], "min_experience": o["min_experience"],
                                      "low": money(low), "high": money(high)}, o_ids.shape[0])
    world.spawn(o_ids.shape[0], {
        Opening: {"employer": owner[rows], "employer_name": employer_name, "title": o["title"].astype(STR),
                  "field": o["field"].astype(STR), "requirements": o["requirements"].astype(STR),
                  "location": o["location"].astype(STR), "min_experience": o["min_experience"].astype(np.int32),
                  "low": low, "high": high, "ad": ad, "embedding": embedder.embed(ad)},
        Vacancy: {}}, ids=o_ids)
    ensure_environment(world)
    schedule_interventions(world, cfg.interventions)
    world.add_systems(start_tick, apply_interventions, respond_to_offers, close_hires, decide_offers, answer_interviews,
                      screen_applications, post_jobs, search_and_apply, record_market)


SCENARIO = Scenario(name="jobs", summary="Job market (GenSim §2.1): search, apply, interview, offer, hire",
                    config=JobsConfig, build=build, metrics=metrics, unit="steps",
                    mock_policy=lambda cfg: jobs_policy(), report=report,
                    judges=JUDGES)
