"""Job market (GenSim §2.1): seekers search a job board, apply, interview, get offers, accept or decline.

Seekers (CV, skills, experience, education, expected salary, location) and
employers with openings (title, requirements, minimum experience, salary
band) are drawn from declared distributions (``[population.*]`` specs). The
job board is a faiss :class:`~socius.text.vector_index.VectorIndex` over
the open ads' embeddings (the hashing embedder by default, the real
``all-MiniLM-L6-v2`` with ``embedder = "minilm"``).

Every tick, every stage runs for whatever reached it (messages sent in tick
*t* are read in *t + 1*, so one application takes five ticks from ad to hire):

1. ``respond_to_offers`` — seekers with offers accept one or decline (batched);
   a hire leaves the pool;
2. ``close_hires`` — an accepted offer fills the opening; a declined one reopens it;
3. ``decide_offers`` — openings read their interview answers and make at
   most one offer, with a salary (batched, one request per opening);
4. ``answer_interviews`` — invited seekers answer the interview question (batched);
5. ``screen_applications`` — openings shortlist their new applicants by
   match, invite some and write the interview question (one request per opening);
6. ``post_jobs`` + ``search_and_apply`` — the board is rebuilt from the open
   openings of all ranks; searching seekers query it with their CV
   embedding (top ``search_k`` ads they have not applied to) and decide
   where to apply (batched);
7. ``record_market`` — employment rate, applications per opening, offer
   acceptance, time to hire, salary gaps (reduced over ranks).

Seekers and openings interact only through messages (``Application``,
``Invite``, ``Answer``, ``Offer``, ``Reply``), so they may sit on different
ranks; an employer and its openings are one group (one rank).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from socius.ecs import Component, Message, Ragged, Resource, Scalar, String, Vector, World, system
from socius.ecs.storage import find_rows
from socius.mpi import Ranks, exact_sum, gather_ordered, group_partition, int_sum, world_ranks
from socius.app.report import gather_table, history_columns, is_lead, pyplot, write_table
from socius.llm import Decision, decide
from socius.text.embed import EMBEDDER_KINDS, make_embedder
from socius.llm import Sampling
from socius.systems import apply_interventions, ensure_environment, parse_interventions
from socius.systems.environment import \
    schedule_interventions
from socius.population import parse_population, sample_population
from socius.llm import JsonReply, Number, Text
from socius.llm import Template
from socius.text.vector_index import VectorIndex

from . import prompts
from .market import A, append_ragged, cat, chosen_numbers, group, in_ragged, join_groups, money, quoted
from .mock import jobs_policy

STR = np.dtypes.StringDType()
DIM = 384  # both embedders: all-MiniLM-L6-v2 and the hashing embedder at its default width

FIELDS = ["software", "nursing", "sales", "logistics", "finance"]
SKILLS = {
    "software": ["python, sql, cloud", "java, testing, git", "javascript, react, css", "python, machine learning, sql"],
    "nursing": ["patient care, medication, triage", "intensive care, monitoring, triage",
                "elderly care, wound care, medication"],
    "sales": ["negotiation, crm, cold calling", "retail, customer service, cash handling",
              "account management, crm, presentations"],
    "logistics": ["forklift, inventory, scheduling", "driving licence, route planning, delivery",
                  "supply chain, inventory, erp"],
    "finance": ["accounting, excel, tax", "auditing, excel, reporting", "financial analysis, excel, sql"],
}
TITLES = {"software": ["Software Developer", "Data Engineer", "Web Developer"],
          "nursing": ["Registered Nurse", "Care Assistant", "ICU Nurse"],
          "sales": ["Sales Representative", "Account Manager", "Shop Assistant"],
          "logistics": ["Warehouse Operative", "Delivery Driver", "Logistics Coordinator"],
          "finance": ["Accountant", "Financial Analyst", "Auditor"]}
SALARY = {"software": 60, "nursing": 42, "sales": 38, "logistics": 34, "finance": 52}   # k a year, mean
CITIES = ["Berlin", "Hamburg", "Munich", "Leipzig"]
FIRST = ["Maria", "Wei", "Tom", "Aiko", "Carlos", "Olga", "Kwame", "Priya", "Lena", "Omar", "Sofia", "Ivan", "Mei",
         "John", "Fatima", "Alex", "Nadia", "Pedro", "Yuki", "Hassan", "Emma", "Ravi", "Chloe", "Jonas"]
LAST = ["Schmidt", "Chen", "Novak", "Tanaka", "Garcia", "Petrova", "Mensah", "Sharma", "Weber", "Haddad",
        "Rossi", "Ivanova", "Lin", "Smith", "Okafor", "Brown"]
FIRMS = ["Northwind", "Bluebird", "Alder", "Kestrel", "Meridian", "Copperleaf", "Harbor", "Summit", "Lindqvist",
         "Oakridge", "Brightline", "Fenwick"]
FIRM_KIND = {"software": "Software", "nursing": "Care", "sales": "Retail", "logistics": "Logistics",
             "finance": "Finance"}


def _by_field(table: dict) -> dict:
    return {"dist": "conditional", "on": "field",
            "cases": {f: {"dist": "categorical", "values": v} for f, v in table.items()}}


def _salary(spread: float) -> dict:
    return {"dist": "conditional", "on": "field",
            "cases": {f: {"dist": "normal", "mean": m, "std": m * spread, "low": m * 0.5, "high": m * 2}
                      for f, m in SALARY.items()}}


DEFAULT_SEEKERS = {
    "field": {"dist": "categorical", "values": FIELDS, "weights": [0.25, 0.15, 0.25, 0.2, 0.15]},
    "skills": _by_field(SKILLS),
    "experience": {"dist": "normal", "mean": 6, "std": 5, "low": 0, "high": 40, "dtype": "int"},
    "education": {"dist": "categorical", "values": ["vocational training", "Bachelor's degree", "Master's degree"],
                  "weights": [0.45, 0.4, 0.15]},
    "location": {"dist": "categorical", "values": CITIES, "weights": [0.35, 0.25, 0.25, 0.15]},
    "expected_salary": _salary(0.18),
}
DEFAULT_OPENINGS = {
    "field": {"dist": "categorical", "values": FIELDS, "weights": [0.25, 0.15, 0.25, 0.2, 0.15]},
    "title": _by_field(TITLES),
    "requirements": _by_field(SKILLS),
    "min_experience": {"dist": "uniform", "low": 0, "high": 8, "dtype": "int"},
    "location": {"dist": "categorical", "values": CITIES + ["remote"], "weights": [0.3, 0.2, 0.2, 0.15, 0.15]},
    "salary_low": _salary(0.12),
}


# ------------------------------------------------------------------------------------------ schemas
class Seeker(Component):
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


class Search(Component):
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


class Employer(Component):
    """A firm: name, sector, city, number of openings."""

    name = String()
    sector = String()
    location = String()
    openings = Scalar(np.int32)


class Opening(Component):
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


class Vacancy(Component):
    """An opening's state: open (0) or filled (1), the outstanding offer, counts, the hire."""

    status = Scalar(np.int8)
    offer_to = Scalar(np.int64, default=-1)
    applicants = Scalar(np.int32)
    invited = Scalar(np.int32)
    offers = Scalar(np.int32)
    declined = Scalar(np.int32)
    hired = Scalar(np.int64, default=-1)
    filled_tick = Scalar(np.int32, default=-1)


class Application(Message):
    """Seeker → opening."""

    name = String()
    cv = String()
    experience = Scalar(np.int32)
    expected = Scalar(np.float64)
    match = Scalar(np.float64)


class Invite(Message):
    """Opening → seeker: the ad and the interview question."""

    job = String()
    question = String()


class Answer(Message):
    """Seeker → opening: the interview answer, with what the employer needs to decide."""

    name = String()
    cv = String()
    experience = Scalar(np.int32)
    expected = Scalar(np.float64)
    answer = String()


class Offer(Message):
    """Opening → seeker."""

    job = String()
    salary = Scalar(np.float64)


class Reply(Message):
    """Seeker → opening: accepted (1) or declined (0)."""

    accepted = Scalar(np.int8)
    salary = Scalar(np.float64)


# ------------------------------------------------------------------------------------------ config
@dataclass
class JobsConfig:
    """Options of ``socius run jobs`` (also a ``--config`` TOML/JSON table); see the README."""

    agents: int = 200                  # seekers
    employers: int = 40
    openings_per_employer: int = 3
    search_k: int = 5                  # ads a seeker sees per tick
    shortlist: int = 6                 # applicants an opening reads per tick (best match first)
    max_invites: int = 3
    embedder: str = "hashing"          # hashing | minilm (all-MiniLM-L6-v2, the `embeddings` extra)
    index: str = "flat"                # flat | ivf | hnsw (faiss)
    temperature: float = 0.7
    max_tokens: int = 96
    seekers: dict = field(default_factory=dict)    # per-attribute distributions (override the defaults)
    openings: dict = field(default_factory=dict)
    interventions: list = field(default_factory=list)  # [[interventions]] tables: tick, set, value, where/ids

    def validate(self) -> None:
        parse_interventions(self.interventions)   # raises ConfigError naming interventions[i].<field>
        for name in ("agents", "employers", "openings_per_employer", "search_k", "shortlist", "max_invites"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.search_k > 12 or self.shortlist > 12:
            raise ValueError("search_k: must be <= 12" if self.search_k > 12 else "shortlist: must be <= 12")
        if self.max_invites > self.shortlist:
            raise ValueError(f"max_invites: must be <= shortlist ({self.shortlist}), got {self.max_invites}")
        if self.embedder not in EMBEDDER_KINDS:
            raise ValueError(f"embedder: must be one of {', '.join(EMBEDDER_KINDS)}, got {self.embedder!r}")
        if self.index not in ("flat", "ivf", "hnsw"):
            raise ValueError(f"index: must be flat, ivf or hnsw, got {self.index!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        if self.max_tokens < 16:
            raise ValueError(f"max_tokens: must be >= 16, got {self.max_tokens}")
        self.seeker_specs()
        self.opening_specs()

    def seeker_specs(self) -> dict:
        specs = parse_population({**DEFAULT_SEEKERS, **self.seekers}, "seekers")
        missing = set(DEFAULT_SEEKERS) - set(specs)
        if missing:
            raise ValueError(f"seekers: needs attributes {sorted(missing)}")
        return specs

    def opening_specs(self) -> dict:
        return parse_population({**DEFAULT_OPENINGS, **self.openings}, "openings")


class JobMarket(Resource):
    """Parameters and the per-tick history of the market's measures (saved in snapshots)."""

    search_k: int = 5
    shortlist: int = 6
    max_invites: int = 3
    history: list = field(default_factory=list)


@dataclass
class JobsRuntime:
    """Decisions, the embedder, the job board and this tick's counters (a plain resource: not saved —
    the board is rebuilt from the openings every tick, the counters live one tick)."""

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


COUNTERS = ("applications", "invites", "answers", "offers", "accepted", "declined", "hires")


def make_decisions(cfg: JobsConfig) -> dict:
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


def _count(rt: JobsRuntime, name: str, n) -> None:
    rt.tick[name] = rt.tick.get(name, 0) + int(n)


def _add(rt: JobsRuntime, name: str, values: np.ndarray) -> None:
    rt.tick.setdefault(name, []).append(np.asarray(values, dtype=np.float64))


# ------------------------------------------------------------------------------------------ systems
@system(phase="pre", resources=(JobsRuntime,))
def start_tick(ctx):
    ctx.resource(JobsRuntime).tick = {}


@system(phase="update", reads=(Seeker,), writes=(Search,), resources=(JobsRuntime,), receives=(Offer,),
        sends=(Reply,))
def respond_to_offers(ctx):
    """Seekers with offers accept one (or none); a hire leaves the pool. Employed seekers decline."""
    batch, rt = ctx.read(Offer), ctx.resource(JobsRuntime)
    if not len(batch):
        return
    v = ctx.query(Seeker, Search)
    order, seekers, counts, pos = group(batch.target)
    rows = find_rows(v.ids, seekers)[0]
    searching = v[Search].status[rows] == 0
    lines = cat((pos + 1).astype(STR), ". ", batch.job[order], " Salary offered: ", money(batch.salary[order]),
                "k a year.")
    offers = join_groups(lines, counts, "\n")
    accept = np.zeros(seekers.shape[0], np.int64)
    ask = np.flatnonzero(searching)
    if ask.shape[0]:
        s = v[Seeker]
        r = rows[ask]
        res = decide(ctx.world, rt.respond, seekers[ask], {
            "name": s.name[r], "cv": s.cv[r], "weeks": ctx.tick, "expected": money(s.expected[r]),
            "offers": offers[ask]})
        a = res.values["accept"].astype(np.int64)
        accept[ask] = np.where((a >= 1) & (a <= counts[ask]), a, 0)
    g = np.repeat(np.arange(seekers.shape[0]), counts)          # group of each listed offer
    took = (pos + 1) == accept[g]
    sender, salary = batch.sender[order], batch.salary[order]
    ctx.send(Reply, sender=batch.target[order], target=sender, accepted=took.astype(np.int8), salary=salary)
    hired = accept > 0
    job = np.full(seekers.shape[0], -1, np.int64)
    pay = np.zeros(seekers.shape[0])
    job[g[took]], pay[g[took]] = sender[took], salary[took]
    st = v[Search]
    new_status, new_job = st.status.copy(), st.job.copy()
    new_salary, new_tick = st.salary.copy(), st.hired_tick.copy()
    new_offers, new_declined = st.offers.copy(), st.declined.copy()
    new_offers[rows] += counts.astype(np.int32)
    new_declined[rows] += (counts - hired).astype(np.int32)
    h = rows[hired]
    new_status[h], new_job[h], new_salary[h], new_tick[h] = 1, job[hired], pay[hired], ctx.tick
    v.set(Search, status=new_status, job=new_job, salary=new_salary, hired_tick=new_tick, offers=new_offers,
          declined=new_declined)
    _count(rt, "accepted", hired.sum())
    _count(rt, "declined", counts.sum() - hired.sum())
    _count(rt, "hires", hired.sum())
    _add(rt, "accepted_gap", pay[hired] - v[Seeker].expected[h])
    _add(rt, "time_to_hire", np.full(int(hired.sum()), ctx.tick + 1.0))


@system(phase="update", writes=(Vacancy,), receives=(Reply,))
def close_hires(ctx):
    """An accepted offer fills its opening; a declined one reopens it for the next candidates."""
    batch = ctx.read(Reply)
    if not len(batch):
        return
    v = ctx.query(Vacancy)
    rows = find_rows(v.ids, batch.target)[0]
    acc = batch.accepted == 1
    va = v[Vacancy]
    status, offer_to, hired = va.status.copy(), va.offer_to.copy(), va.hired.copy()
    filled, declined = va.filled_tick.copy(), va.declined.copy()
    offer_to[rows] = -1
    status[rows[acc]], hired[rows[acc]], filled[rows[acc]] = 1, batch.sender[acc], ctx.tick
    np.add.at(declined, rows[~acc], 1)
    v.set(Vacancy, status=status, offer_to=offer_to, hired=hired, filled_tick=filled, declined=declined)


@system(phase="update", reads=(Opening,), writes=(Vacancy,), resources=(JobsRuntime,), receives=(Answer,),
        sends=(Offer,))
def decide_offers(ctx):
    """Openings read their candidates' answers and make at most one offer each, with a salary."""
    batch, rt = ctx.read(Answer), ctx.resource(JobsRuntime)
    if not len(batch):
        return
    v = ctx.query(Opening, Vacancy)
    order, openings, counts, pos = group(batch.target)
    rows = find_rows(v.ids, openings)[0]
    va = v[Vacancy]
    ok = (va.status[rows] == 0) & (va.offer_to[rows] == -1)
    lines = cat((pos + 1).astype(STR), ". ", batch.name[order], ", ", batch.experience[order].astype(STR),
                " years, hopes for ", money(batch.expected[order]), "k. CV: ", quoted(batch.cv[order]),
                " Answer: ", quoted(batch.answer[order]))
    cands = join_groups(lines, counts, "\n")
    ask = np.flatnonzero(ok)
    if not ask.shape[0]:
        return
    o = v[Opening]
    r = rows[ask]
    res = decide(ctx.world, rt.offer, openings[ask], {
        "ad": o.ad[r], "low": money(o.low[r]), "high": money(o.high[r]), "candidates": cands[ask]})
    pick = res.values["offer"].astype(np.int64)
    band_lo, band_hi = o.low[r], o.high[r]
    salary = res.values["salary"]
    salary = np.where((salary >= 0.5 * band_lo) & (salary <= 2 * band_hi), salary, (band_lo + band_hi) / 2)
    made = (pick >= 1) & (pick <= counts[ask])
    start = np.r_[0, np.cumsum(counts)[:-1]]
    msg = order[start[ask[made]] + pick[made] - 1]                # the chosen candidate's Answer message
    ctx.send(Offer, sender=openings[ask[made]], target=batch.sender[msg], job=o.ad[r[made]], salary=salary[made])
    offer_to, offers = va.offer_to.copy(), va.offers.copy()
    offer_to[r[made]] = batch.sender[msg]
    offers[r[made]] += 1
    v.set(Vacancy, offer_to=offer_to, offers=offers)
    _count(rt, "offers", made.sum())
    _add(rt, "offer_gap", salary[made] - batch.expected[msg])


@system(phase="update", reads=(Seeker,), writes=(Search,), resources=(JobsRuntime,), receives=(Invite,),
        sends=(Answer,))
def answer_interviews(ctx):
    """Invited seekers who are still searching answer the interview question (one batched call)."""
    batch, rt = ctx.read(Invite), ctx.resource(JobsRuntime)
    if not len(batch):
        return
    v = ctx.query(Seeker, Search)
    rows = find_rows(v.ids, batch.target)[0]
    invites = v[Search].invites.copy()
    np.add.at(invites, rows, 1)
    v.set(Search, invites=invites)
    live = np.flatnonzero(v[Search].status[rows] == 0)
    if not live.shape[0]:
        return
    s, r = v[Seeker], rows[live]
    res = decide(ctx.world, rt.answer, batch.target[live], {
        "name": s.name[r], "cv": s.cv[r], "job": batch.job[live], "question": batch.question[live]})
    ctx.send(Answer, sender=batch.target[live], target=batch.sender[live], name=s.name[r], cv=s.cv[r],
             experience=s.experience[r], expected=s.expected[r], answer=res.values["answer"])
    _count(rt, "answers", live.shape[0])


@system(phase="update", reads=(Opening,), writes=(Vacancy,), resources=(JobMarket, JobsRuntime),
        receives=(Application,), sends=(Invite,))
def screen_applications(ctx):
    """Open openings read their best-matching new applicants, invite some and write the question."""
    batch, rt, mk = ctx.read(Application), ctx.resource(JobsRuntime), ctx.resource(JobMarket)
    if not len(batch):
        return
    v = ctx.query(Opening, Vacancy)
    order, openings, counts, pos = group(batch.target, key=batch.match)
    rows = find_rows(v.ids, openings)[0]
    va = v[Vacancy]
    applicants = va.applicants.copy()
    applicants[rows] += counts.astype(np.int32)
    listed = pos < mk.shortlist
    g = np.repeat(np.arange(openings.shape[0]), counts)
    m = order[listed]
    lines = cat((pos[listed] + 1).astype(STR), ". ", batch.name[m], ", ", batch.experience[m].astype(STR),
                " years, expects ", money(batch.expected[m]), "k, match ", np.strings.mod("%.2f", batch.match[m]),
                ". CV: ", quoted(batch.cv[m]))
    shown = np.minimum(counts, mk.shortlist)
    applicants_text = join_groups(lines, shown, "\n")
    ask = np.flatnonzero(va.status[rows] == 0)
    if ask.shape[0]:
        o, r = v[Opening], rows[ask]
        res = decide(ctx.world, rt.screen, openings[ask], {
            "ad": o.ad[r], "applicants": applicants_text[ask], "max_invites": mk.max_invites})
        chosen = chosen_numbers(res.values["invite"], mk.shortlist)                 # [a, shortlist]
        chosen &= np.cumsum(chosen, axis=1) <= mk.max_invites
        chosen &= np.arange(mk.shortlist)[None, :] < shown[ask][:, None]
        a_of = np.full(openings.shape[0], -1, np.int64)
        a_of[ask] = np.arange(ask.shape[0])
        sel = listed & (a_of[g] >= 0)
        sel[sel] = chosen[a_of[g[sel]], pos[sel]]
        msg = order[sel]
        q = np.full(openings.shape[0], "", STR)
        q[ask] = np.strings.slice(res.values["question"], 0, 300)
        ctx.send(Invite, sender=batch.target[msg], target=batch.sender[msg], job=v[Opening].ad[rows[g[sel]]],
                 question=q[g[sel]])
        invited = va.invited.copy()
        np.add.at(invited, rows[g[sel]], 1)
        v.set(Vacancy, applicants=applicants, invited=invited)
        _count(rt, "invites", sel.sum())
    else:
        v.set(Vacancy, applicants=applicants)


@system(phase="update", reads=(Opening, Vacancy), resources=(JobsRuntime,))
def post_jobs(ctx):
    """The job board: the open openings of every rank, in ID order, in a faiss index."""
    rt = ctx.resource(JobsRuntime)
    ranks = world_ranks(ctx.world)
    v = ctx.query(Opening, Vacancy)
    live = v[Vacancy].status == 0
    ids = v.ids[live]
    all_ids, vecs = gather_ordered(ranks, ids, v[Opening].embedding[live])
    _, ads = gather_ordered(ranks, ids, v[Opening].ad[live])
    rt.board_ids, rt.board_ads = all_ids, ads
    kind = rt.index_kind if all_ids.shape[0] >= 512 else "flat"   # approximate kinds need data to train on
    rt.board = VectorIndex.build(all_ids, vecs, kind=kind) if all_ids.shape[0] else None


@system(phase="update", reads=(Seeker,), writes=(Search,), resources=(JobMarket, JobsRuntime),
        sends=(Application,))
def search_and_apply(ctx):
    """Searching seekers query the board with their CV and decide where to apply (one batched call)."""
    rt, mk = ctx.resource(JobsRuntime), ctx.resource(JobMarket)
    if rt.board is None:
        return
    v = ctx.query(Seeker, Search)
    who = np.flatnonzero(v[Search].status == 0)
    if not who.shape[0]:
        return
    k = mk.search_k
    applied = v[Search].applied
    # enough hits that k remain after dropping the ads a seeker applied to already
    found, score = rt.board.search(v[Seeker].embedding[who], k + int(applied.lengths[who].max(initial=0)))
    rows = np.repeat(who, found.shape[1])
    fresh = (found.reshape(-1) >= 0) & ~in_ragged(applied, rows, found.reshape(-1))
    fresh = fresh.reshape(found.shape)
    keep = fresh & (np.cumsum(fresh, axis=1) <= k)                     # the k best ads not applied to yet
    q, j = np.nonzero(keep)                                            # row-major: seeker, then rank
    has = np.bincount(q, minlength=who.shape[0])
    if not q.shape[0]:
        return
    pos = np.arange(q.shape[0]) - np.repeat(np.r_[0, np.cumsum(has)[:-1]], has)
    opening = found[q, j]
    ad = rt.board_ads[np.searchsorted(rt.board_ids, opening)]
    lines = cat((pos + 1).astype(STR), ". ", ad, " (match ", np.strings.mod("%.2f", score[q, j].astype(np.float64)),
                ")")
    ads = join_groups(lines, has[has > 0], "\n")
    ask = np.flatnonzero(has > 0)
    s, r = v[Seeker], who[ask]
    res = decide(ctx.world, rt.apply, v.ids[r], {
        "name": s.name[r], "cv": s.cv[r], "weeks": ctx.tick, "expected": money(s.expected[r]), "ads": ads})
    chosen = chosen_numbers(res.values["apply"], k)                    # [a, k]
    a_of = np.full(who.shape[0], -1, np.int64)
    a_of[ask] = np.arange(ask.shape[0])
    go = chosen[a_of[q], pos]
    seeker_row, target = who[q[go]], opening[go]
    ctx.send(Application, sender=v.ids[seeker_row], target=target, name=s.name[seeker_row], cv=s.cv[seeker_row],
             experience=s.experience[seeker_row], expected=s.expected[seeker_row],
             match=score[q[go], j[go]].astype(np.float64))
    st = v[Search]
    apps = st.applications.copy()
    np.add.at(apps, seeker_row, 1)
    v.set(Search, applied=append_ragged(applied, seeker_row, target), applications=apps)
    _count(rt, "applications", go.sum())


@system(phase="post", reads=(Search, Vacancy, Seeker), resources=(JobMarket, JobsRuntime))
def record_market(ctx):
    """This tick's measures, reduced over ranks."""
    rt, mk = ctx.resource(JobsRuntime), ctx.resource(JobMarket)
    ranks = world_ranks(ctx.world)
    s = ctx.query(Search, Seeker)
    o = ctx.query(Vacancy)
    seekers = int_sum(ranks, np.array([len(s)]))
    employed_mask = s[Search].status == 1
    employed = int_sum(ranks, employed_mask)
    openings = int_sum(ranks, np.array([len(o)]))
    open_now = int_sum(ranks, o[Vacancy].status == 0)
    c = {k: int_sum(ranks, np.array([rt.tick.get(k, 0)])) for k in COUNTERS}

    def mean(name):
        vals = rt.tick.get(name, [])
        x = np.concatenate(vals) if vals else np.zeros(0)
        n = int_sum(ranks, np.array([x.shape[0]]))
        return exact_sum(ranks, x) / n if n else float("nan")

    ttl_n = employed
    ttl = exact_sum(ranks, s[Search].hired_tick[employed_mask] + 1.0) / ttl_n if ttl_n else float("nan")
    gap_all = exact_sum(ranks, (s[Search].salary - s[Seeker].expected)[employed_mask]) / ttl_n if ttl_n \
        else float("nan")
    responded = c["accepted"] + c["declined"]
    prev = mk.history[-1] if mk.history else {"accepted_total": 0, "responded_total": 0}
    acc_total, resp_total = prev["accepted_total"] + c["accepted"], prev["responded_total"] + responded
    mk.history.append({
        "tick": ctx.tick, "seekers": seekers, "employed": employed,
        "employment_rate": employed / seekers if seekers else float("nan"),
        "openings": openings, "open_openings": open_now, "filled_openings": openings - open_now, **c,
        "applications_per_opening": c["applications"] / open_now if open_now else float("nan"),
        "applicants_per_opening_total": int_sum(ranks, o[Vacancy].applicants) / openings if openings
        else float("nan"),
        "offer_acceptance": c["accepted"] / responded if responded else float("nan"),
        "accepted_total": acc_total, "responded_total": resp_total,
        "offer_acceptance_total": acc_total / resp_total if resp_total else float("nan"),
        "time_to_hire": mean("time_to_hire"), "time_to_hire_mean": ttl,
        "offer_gap": mean("offer_gap"), "accepted_gap": mean("accepted_gap"), "accepted_gap_mean": gap_all,
    })


# ------------------------------------------------------------------------------------------ build
def _names(ids: np.ndarray, seed: int, stream: str, table: list) -> np.ndarray:
    from socius.ecs import EntityRng
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


# ------------------------------------------------------------------------------------------ output
def metrics(world: World) -> dict:
    return history_columns(world.resource(JobMarket).history)


def report(world: World, out: Path) -> None:
    """``hires.parquet`` (one row per hire), ``openings.parquet`` and ``jobs_ticks.png``."""
    s = world.query(Seeker, Search)
    hired = s[Search].status == 1
    write_table(gather_table(world, pa.table({"seeker": s.ids[hired], "opening": s[Search].job[hired],
                             "tick": s[Search].hired_tick[hired], "salary": s[Search].salary[hired],
                             "expected": s[Seeker].expected[hired],
                             "field": pa.array(s[Seeker].field[hired].astype(object), pa.string())}),
                             ["seeker"]), out / "hires.parquet")  # every rank's hires, written by rank 0
    o = world.query(Opening, Vacancy)
    write_table(gather_table(world, pa.table({"opening": o.ids, "employer": o[Opening].employer,
                             "title": pa.array(o[Opening].title.astype(object), pa.string()),
                             "low": o[Opening].low, "high": o[Opening].high, "status": o[Vacancy].status,
                             "applicants": o[Vacancy].applicants, "invited": o[Vacancy].invited,
                             "offers": o[Vacancy].offers, "declined": o[Vacancy].declined,
                             "hired": o[Vacancy].hired, "filled_tick": o[Vacancy].filled_tick}),
                             ["opening"]), out / "openings.parquet")
    cols = metrics(world)
    plt = pyplot() if cols and is_lead(world) else None
    if plt is None:
        return
    t = cols["tick"]
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(15, 4))
    ax.plot(t, cols["employment_rate"], "o-", label="employment rate")
    ax.plot(t, cols["filled_openings"] / np.maximum(cols["openings"], 1), "s-", label="openings filled")
    ax.plot(t, cols["offer_acceptance_total"], "^--", label="offer acceptance (so far)")
    ax.set_ylim(0, 1)
    ax.set_xlabel("tick")
    ax.set_title("Employment and vacancies")
    ax.legend(fontsize=8)
    for k in ("applications", "invites", "answers", "offers", "hires"):
        bx.plot(t, cols[k], ".-", label=k)
    bx.set_xlabel("tick")
    bx.set_title(f"Pipeline per tick (applications per opening: {np.nanmean(cols['applications_per_opening']):.1f})")
    bx.legend(fontsize=8)
    cx.plot(t, cols["offer_gap"], "o-", label="offered − expected (offers this tick)")
    cx.plot(t, cols["accepted_gap_mean"], "s-", label="salary − expected (all hires)")
    cx.axhline(0, color="grey", lw=1)
    cx.set_xlabel("tick")
    cx.set_ylabel("k a year")
    cx.set_title("Salary gaps")
    cx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "jobs_ticks.png", dpi=110)
    plt.close(fig)


def _scenario():
    from socius.app.registry import Scenario
    return Scenario(name="jobs", summary="Job market (GenSim §2.1): search, apply, interview, offer, hire",
                    config=JobsConfig, build=build, metrics=metrics, unit="steps",
                    mock_policy=lambda cfg: jobs_policy(), report=report)


SCENARIO = _scenario()
