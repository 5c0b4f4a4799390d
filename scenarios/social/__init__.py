"""Social-network propagation (S3: Gao et al., "S3: Social-network Simulation System with LLM-Empowered Agents").

Agents follow each other on a follow graph (scale-free, small-world, or an
edge list; :mod:`.graph`), stored as a ragged component. A news event reaches
a few seed agents at ``event_tick``; from then on, every tick:

1. ``read_posts``: each agent reads the posts sent last tick by those it
   follows (one :class:`Post` message per post; see "Messages" below) —
   how many, their average stance, the strongest mood, and the first few
   posts to show in its prompt. Reading a post makes an agent aware.
2. ``inject_event``: at ``event_tick`` the seeds receive the news item.
3. ``decide_actions``: the agents that act this tick — aware agents with the
   news or new posts (with probability ``react``), or just active (probability
   ``activity``) — make ONE batched LLM call (:func:`socius.llm.decide`):
   post / forward / idle, their emotion (calm / moderate / intense) and their
   attitude (stance on the event in [-1, 1]). Posts and forwards are sent.
4. ``relax_emotions``: agents that did not act calm down one level with
   probability ``relax``.
5. ``record_metrics``: aware agents, emotion density, attitude histogram,
   posts and forwards — exact global reductions (:mod:`socius.mpi.reduce`).

Messages: a post is one :class:`Post` message from its author with no single
target (``target = -1``); a follower picks out the posts of those it follows
by sender ID. That is the columnar form of "one message per follower" —
``m`` posts cost ``m`` rows instead of ``m × followers`` — and it stays
rank-invariant: under MPI the router gives every rank all broadcast posts
in the same (tick, sender, seq) order.

Every per-agent value is drawn keyed by entity ID; agents are spawned with
explicit global IDs (``socius.mpi.owned_block``), so the same seed gives the
same state on any number of ranks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import Component, Message, Ragged, Resource, Scalar, String, Vector, World, system
from socius.ecs.rng import EntityRng
from socius.ecs.storage import find_rows
from socius.mpi import bincount, exact_mean, histogram, int_sum, owned_block, top_k, world_ranks
from socius.app.report import history_columns, is_lead, pyplot
from socius.llm import Decision, decide
from socius.llm import Sampling
from socius.systems import apply_interventions, ensure_environment, parse_interventions
from socius.systems.environment import \
    schedule_interventions
from socius.population import parse_population, sample_population
from socius.llm import Choice, JsonReply, Number, Text
from socius.llm import Template

from . import graph, prompts
from .graph import edge_arrays, follow_graph
from .mock import social_policy

STR = np.dtypes.StringDType()
MAX_SHOWN = 3                 # posts a prompt can show (the Inbox.shown width)
NEWS_CONTENT = 0              # content ID of the news item; posts get tick * 2**40 + author
TEXT_CHARS = 140
SELECTIONS = ("random", "hubs", "ids")
DYNAMICS = ("converge", "polarise")

DEFAULT_POPULATION = {
    "name": {"dist": "categorical", "values": ["Alex", "Maria", "Wei", "Fatima", "John", "Aiko", "Carlos", "Olga",
                                               "Kwame", "Priya", "Tom", "Lena", "Omar", "Sofia", "Ivan", "Mei"]},
    "age": {"dist": "normal", "mean": 35, "std": 13, "low": 16, "high": 80, "dtype": "int"},
    "occupation": {"dist": "categorical", "values": ["student", "teacher", "nurse", "engineer", "journalist",
                                                     "shop assistant", "driver", "lawyer", "retiree", "farmer"]},
    "trait": {"dist": "categorical", "values": ["outspoken", "cautious", "curious", "sceptical", "empathetic"]},
}


# ------------------------------------------------------------------------------------------ config
@dataclass
class SocialConfig:
    """Options of ``socius run social`` (also a ``--config`` TOML/JSON table); see the scenario README."""

    agents: int = 1000
    graph: str = "scale_free"        # scale_free | small_world | file
    degree: int = 10                 # mean number of follows per agent
    gamma: float = 2.5               # scale_free: exponent of the in-degree power law (> 2)
    rewire: float = 0.1              # small_world: rewiring probability
    edges_file: str = ""             # graph = file: CSV or Parquet with columns src,dst (src follows dst)
    event_tick: int = 0              # tick at which the news reaches the seeds
    seeds: int = 5                   # how many agents get the news first
    seed_selection: str = "random"   # random | hubs (most followers) | ids (seed_ids)
    seed_ids: list[int] = field(default_factory=list)
    headline: str = "The government announces that treated nuclear wastewater will be released into the sea."
    news_stance: float = 0.0         # the stance the news item carries, in [-1, 1]
    news_emotion: str = "moderate"   # the mood the news item carries
    shown_posts: int = 3             # posts shown in a prompt (1..3); all of them count in the summary
    react: float = 0.8               # chance that an aware agent with new posts acts this tick
    activity: float = 0.05           # chance that an aware agent acts without new posts
    relax: float = 0.3               # chance that an agent that did not act calms down one level
    attitude_mean: float = 0.0       # initial stances: normal(mean, std), clipped to [-1, 1]
    attitude_std: float = 0.3
    bins: int = 10                   # attitude histogram bins over [-1, 1]
    temperature: float = 0.7
    max_tokens: int = 96
    few_shot: bool = True
    dedup: bool = False              # merge identical prompts (every prompt here is an agent's own: off saves time)
    dynamics: str = "converge"       # mock engine: converge | polarise
    influence: float = 0.3           # mock engine: how far a stance moves per decision
    share: float = 0.6               # mock engine: chance to post/forward right after hearing of the event
    forward: float = 0.6             # mock engine: share of forwards among shares when posts were read
    novelty: float = 3.0             # mock engine: ticks over which interest in the event fades
    population: dict = field(default_factory=dict)   # per-attribute distributions (override the defaults)
    interventions: list = field(default_factory=list)  # [[interventions]] tables: tick, set, value, where/ids

    def validate(self) -> None:
        def unit(name):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: must be in [0, 1], got {v}")
        if not 2 <= self.agents <= graph.MAX_AGENTS:
            raise ValueError(f"agents: must be in 2..{graph.MAX_AGENTS}, got {self.agents}")
        if self.graph not in graph.GRAPHS:
            raise ValueError(f"graph: must be one of {', '.join(graph.GRAPHS)}, got {self.graph!r}")
        if self.degree < 1:
            raise ValueError(f"degree: must be >= 1, got {self.degree}")
        if not self.gamma > 2.0:
            raise ValueError(f"gamma: must be > 2, got {self.gamma}")
        if self.graph == "file" and not self.edges_file:
            raise ValueError("edges_file: graph = 'file' needs an edge list (CSV or Parquet with src,dst)")
        if self.event_tick < 0:
            raise ValueError(f"event_tick: must be >= 0, got {self.event_tick}")
        if self.seed_selection not in SELECTIONS:
            raise ValueError(f"seed_selection: must be one of {', '.join(SELECTIONS)}, got {self.seed_selection!r}")
        if self.seed_selection == "ids":
            if not self.seed_ids:
                raise ValueError("seed_ids: seed_selection = 'ids' needs a non-empty list of agent IDs")
            bad = [i for i in self.seed_ids if not 0 <= i < self.agents]
            if bad:
                raise ValueError(f"seed_ids: agent ID {bad[0]} is outside 0..{self.agents - 1}")
        elif not 1 <= self.seeds <= self.agents:
            raise ValueError(f"seeds: must be in 1..agents, got {self.seeds}")
        for name in ("rewire", "react", "activity", "relax", "influence", "share", "forward"):
            unit(name)
        if not -1.0 <= self.news_stance <= 1.0:
            raise ValueError(f"news_stance: must be in [-1, 1], got {self.news_stance}")
        if self.news_emotion not in prompts.EMOTIONS:
            raise ValueError(f"news_emotion: must be one of {', '.join(prompts.EMOTIONS)}, got {self.news_emotion!r}")
        if not 1 <= self.shown_posts <= MAX_SHOWN:
            raise ValueError(f"shown_posts: must be in 1..{MAX_SHOWN}, got {self.shown_posts}")
        if self.attitude_std < 0:
            raise ValueError(f"attitude_std: must be >= 0, got {self.attitude_std}")
        if not 1 <= self.bins <= 200:
            raise ValueError(f"bins: must be in 1..200, got {self.bins}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens: must be >= 1, got {self.max_tokens}")
        if self.dynamics not in DYNAMICS:
            raise ValueError(f"dynamics: must be one of {', '.join(DYNAMICS)}, got {self.dynamics!r}")
        if self.novelty <= 0:
            raise ValueError(f"novelty: must be > 0, got {self.novelty}")
        self.population_specs()
        parse_interventions(self.interventions)   # raises ConfigError naming interventions[i].<field>

    def population_specs(self) -> dict:
        specs = parse_population({**DEFAULT_POPULATION, **self.population})
        missing = {"name", "age", "occupation", "trait"} - set(specs)
        if missing:
            raise ValueError(f"population: the social scenario needs attributes {sorted(missing)}")
        return specs


# ------------------------------------------------------------------------------------------ schema
class Profile(Component):
    """A user's public profile, shown in its prompt."""

    name = String()
    age = Scalar(np.int32)
    occupation = String()
    trait = String()


class Follows(Component):
    """``ids``: the agents this agent follows (it sees their posts)."""

    ids = Ragged(np.int64)


class Mood(Component):
    """``emotion`` 0 calm / 1 moderate / 2 intense; ``attitude`` stance on the event in [-1, 1];
    ``aware_since`` the tick the agent heard of the event (-1: not yet)."""

    emotion = Scalar(np.int8)
    attitude = Scalar(np.float32)
    aware_since = Scalar(np.int32, default=-1)


class Inbox(Component):
    """What the agent read this tick: number of posts, the authors of the first ``MAX_SHOWN`` of them
    (``-1``: none), their average stance and strongest mood; ``news``: it got the news item this tick."""

    received = Scalar(np.int32)
    shown = Vector(np.int64, MAX_SHOWN, default=-1)
    avg_attitude = Scalar(np.float32)
    peak = Scalar(np.int8)
    news = Scalar(np.bool_)


class Action(Component):
    """The agent's last decision: ``kind`` 0 idle / 1 post / 2 forward, at ``tick`` (-1: never),
    the ``content`` ID it posted or forwarded (-1: none) and the reply's ``outcome`` (see ``Outcome``)."""

    kind = Scalar(np.int8)
    tick = Scalar(np.int32, default=-1)
    content = Scalar(np.int64, default=-1)
    outcome = Scalar(np.int8)


class Post(Message):
    """A post or forward, seen by the author's followers next tick: ``content`` ID (the news item is
    ``0``, a post ``tick * 2**40 + author``; a forward keeps the forwarded content's ID), ``action``
    1 post / 2 forward, the author's emotion and attitude, and the text."""

    content = Scalar(np.int64)
    action = Scalar(np.int8)
    emotion = Scalar(np.int8)
    attitude = Scalar(np.float32)
    text = String()


class SocialEvent(Resource):
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


class SocialStats(Resource):
    """One row of metrics per tick (saved in snapshots)."""

    history: list = field(default_factory=list)


class SocialPrompts(Resource):
    """The decision of a run; rebuilt from the config, not saved."""

    __snapshot__ = False
    decision: Decision = None
    dedup: bool = False


def make_decision(cfg: SocialConfig) -> Decision:
    schema = JsonReply(action=Choice(*prompts.ACTIONS), emotion=Choice(*prompts.EMOTIONS),
                       attitude=Number(-1, 1), text=Text(max_length=TEXT_CHARS))
    return Decision("social", Template(prompts.decision_text(cfg.few_shot)), schema,
                    fallback={"action": "idle", "emotion": "calm", "attitude": 0.0, "text": ""},
                    sampling=Sampling(temperature=cfg.temperature, max_tokens=cfg.max_tokens, stop=prompts.STOP))


# ------------------------------------------------------------------------------------------ systems
_POST = Template(prompts.POST_LINE, untrusted=("text",))
_NEWS = Template(prompts.NEWS_LINE, untrusted=("text",))
_EMPTY = pa.scalar("", pa.large_string())
#: "%+.2f" of every stance rounded to hundredths, -1.00 .. +1.00 (a lookup is ~10x faster than formatting)
STANCE_TEXT = np.array(["%+.2f" % (i / 100) for i in range(-100, 101)], dtype=STR)


def stance_text(x: np.ndarray) -> np.ndarray:
    """``[n]`` stances in [-1, 1] as ``+0.42`` strings."""
    return STANCE_TEXT[np.clip(np.round(np.asarray(x, np.float64) * 100), -100, 100).astype(np.int64) + 100]


_VERBS = np.array(["posted", "posted", "forwarded"], dtype=STR)


def _rows_by_id(senders: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each of ``ids`` among ``senders`` (unique) and whether it is there: a dense lookup table
    over the ID range (one gather, no search; 8 bytes per ID of the population)."""
    if not ids.shape[0] or not senders.shape[0]:
        return np.zeros(ids.shape[0], np.int64), np.zeros(ids.shape[0], bool)
    top = int(max(senders.max(), ids.max())) + 1
    table = np.full(top, -1, np.int64)
    table[senders] = np.arange(senders.shape[0])
    rows = table[ids]
    found = rows >= 0
    return np.where(found, rows, 0), found


@system(phase="pre", reads=(Follows,), writes=(Inbox, Mood), receives=(Post,))
def read_posts(ctx):
    """Each agent reads last tick's posts by those it follows; a first post makes it aware."""
    batch = ctx.read(Post)
    v = ctx.query(Follows, Inbox, Mood)
    n = len(v)
    shown = np.full((n, MAX_SHOWN), -1, np.int64)
    received = np.zeros(n, np.int32)
    avg = np.zeros(n, np.float32)
    peak = np.zeros(n, np.int8)
    if len(batch):
        f = v[Follows].ids
        rows, found = _rows_by_id(batch.sender, f.values)        # one post per author and tick
        owner = np.repeat(np.arange(n, dtype=np.int64), f.lengths)[found]   # ascending
        post = rows[found]
        cnt = np.bincount(owner, minlength=n)
        received = cnt.astype(np.int32)
        att = np.bincount(owner, weights=batch.attitude[post].astype(np.float64), minlength=n)
        avg = (att / np.maximum(cnt, 1)).astype(np.float32)
        emo = batch.emotion[post]
        peak = np.where(np.bincount(owner, weights=emo == 2, minlength=n) > 0, 2,
                        np.where(np.bincount(owner, weights=emo == 1, minlength=n) > 0, 1, 0)).astype(np.int8)
        rank = np.arange(owner.shape[0]) - np.searchsorted(owner, owner)   # position among the agent's posts
        sel = rank < MAX_SHOWN                                             # the first ones, in follow order
        shown[owner[sel], rank[sel]] = batch.sender[post[sel]]
    v.set(Inbox, received=received, shown=shown, avg_attitude=avg, peak=peak, news=False)
    since = v[Mood].aware_since
    v.set(Mood, aware_since=np.where((since < 0) & (received > 0), ctx.tick, since).astype(np.int32))


@system(phase="pre", writes=(Inbox, Mood), resources=(SocialEvent,))
def inject_event(ctx):
    """The news item reaches the seed agents at ``event_tick``, and any agent whose ``Inbox.news`` an
    intervention set this tick (e.g. ``set = "Inbox.news"``, ``where = "Profile.occupation == 'journalist'"``)."""
    ev = ctx.resource(SocialEvent)
    v = ctx.query(Inbox, Mood)
    news = np.array(v[Inbox].news)
    if ctx.tick == ev.event_tick and ev.seeds:
        rows, found = v.rows_of(np.asarray(ev.seeds, dtype=np.int64))   # this rank's share of the seeds
        news[rows[found]] = True
    r = np.flatnonzero(news)
    if not r.shape[0]:
        return
    ib = {k: np.array(v[Inbox][k]) for k in ("received", "avg_attitude", "peak")}
    k = ib["received"][r].astype(np.float64)
    ib["avg_attitude"][r] = ((ib["avg_attitude"][r] * k + ev.news_stance) / (k + 1)).astype(np.float32)
    ib["received"][r] += 1
    ib["peak"][r] = np.maximum(ib["peak"][r], ev.news_emotion)
    v.set(Inbox, news=news, **ib)
    since = np.array(v[Mood].aware_since)
    since[r] = np.where(since[r] < 0, ctx.tick, since[r])
    v.set(Mood, aware_since=since)


def _post_lines(batch, shown: np.ndarray, k: int, lines: pa.Array) -> pa.Array | None:
    """``[m]`` the ``k``-th shown post's line of each acting agent ("" where none); ``lines``: every post's
    rendered line, aligned with ``batch``."""
    sender = shown[:, k]
    has = sender >= 0
    if not has.any():
        return None
    rows, _ = find_rows(batch.sender, sender)
    return pc.if_else(pa.array(has), lines.take(pa.array(rows)), _EMPTY)


@system(phase="update", reads=(Profile, Inbox), writes=(Mood, Action), sends=(Post,), receives=(Post,),
        resources=(SocialEvent, SocialPrompts))
def decide_actions(ctx):
    """The agents that act this tick ask their LLM (one batched call), update mood and stance, and post."""
    ev = ctx.resource(SocialEvent)
    v = ctx.query(Profile, Inbox, Mood, Action)
    since = v[Mood].aware_since
    received, news = v[Inbox].received, v[Inbox].news
    u = ctx.rng("social:act").random(v.ids, 2)
    act = (since >= 0) & (news | ((received > 0) & (u[:, 0] < ev.react)) | (u[:, 1] < ev.activity))
    idx = np.flatnonzero(act)
    if not idx.shape[0]:
        return
    ids = v.ids[idx]
    m = idx.shape[0]
    batch = ctx.read(Post)
    shown = np.asarray(v[Inbox].shown)[idx]
    shown[:, ev.shown_posts:] = -1
    has_news = np.asarray(news)[idx]
    parts = [pc.if_else(pa.array(has_news), _NEWS.render_arrow({"text": ev.headline}, 1)[0], _EMPTY)]
    if len(batch):  # each post rendered (quoted, defused) once, then gathered for every reader
        lines = _POST.render_arrow({"sender": batch.sender, "verb": _VERBS[batch.action], "text": batch.text},
                                   len(batch))
        parts += [p for p in (_post_lines(batch, shown, k, lines) for k in range(MAX_SHOWN)) if p is not None]
    posts = pc.binary_join_element_wise(*parts, _EMPTY)
    posts = pc.if_else(pc.equal(posts, _EMPTY), pa.scalar(prompts.NO_POSTS, pa.large_string()), posts)
    ago = ctx.tick - since[idx]
    heard = np.where(ago == 0, prompts.HEARD_NOW,
                     np.strings.add(np.strings.add("You heard of it ", ago.astype(STR)), " hours ago.")).astype(STR)
    emo_names = np.array(prompts.EMOTIONS, dtype=STR)
    mood, stance = np.asarray(v[Mood].emotion), np.asarray(v[Mood].attitude)
    fields = {"headline": ev.headline, "name": v[Profile].name[idx], "age": v[Profile].age[idx],
              "occupation": v[Profile].occupation[idx], "trait": v[Profile].trait[idx], "posts": posts,
              "n_posts": received[idx], "avg_stance": stance_text(v[Inbox].avg_attitude[idx]),
              "peak": emo_names[v[Inbox].peak[idx]], "mood": emo_names[mood[idx]],
              "stance": stance_text(stance[idx]), "heard": heard}
    sp = ctx.resource(SocialPrompts)
    res = decide(ctx.world, sp.decision, ids, fields, dedup=sp.dedup)
    good = res.outcome <= 1  # ok or extracted; a fallback keeps the old mood and stance
    act_s, emo_s = res.values["action"], res.values["emotion"]
    kind = ((act_s == "post") * 1 + (act_s == "forward") * 2).astype(np.int8)       # idle (or fallback) 0
    new_emo = ((emo_s == "moderate") * 1 + (emo_s == "intense") * 2).astype(np.int8)
    emotion, attitude = mood.copy(), stance.copy()
    emotion[idx] = np.where(good, new_emo, mood[idx])
    attitude[idx] = np.where(good, res.values["attitude"], stance[idx]).astype(np.float32)
    v.set(Mood, emotion=emotion, attitude=attitude)
    # what a forward passes on: the news item if the agent got it, else the first post it read
    src_rows, src_found = find_rows(batch.sender, shown[:, 0]) if len(batch) else (np.zeros(m, np.int64),
                                                                                     np.zeros(m, bool))
    src_found &= shown[:, 0] >= 0
    can_forward = has_news | src_found
    kind = np.where((kind == 2) & ~can_forward, 1, kind).astype(np.int8)   # nothing to forward: a post
    fwd_content = np.where(has_news, NEWS_CONTENT, batch.content[src_rows] if len(batch) else -1)
    fwd_text = np.where(has_news, ev.headline, batch.text[src_rows] if len(batch) else "").astype(STR)
    own = np.int64(ctx.tick) * (np.int64(1) << np.int64(40)) + ids
    content = np.where(kind == 2, fwd_content, np.where(kind == 1, own, -1)).astype(np.int64)
    text = np.where(kind == 2, fwd_text, np.strings.slice(res.values["text"], 0, TEXT_CHARS)).astype(STR)
    a = {c: np.array(v[Action][c]) for c in ("kind", "tick", "content", "outcome")}
    a["kind"][idx], a["tick"][idx], a["content"][idx], a["outcome"][idx] = kind, ctx.tick, content, res.outcome
    v.set(Action, **a)
    out = kind > 0
    ctx.send(Post, sender=ids[out], content=content[out], action=kind[out], emotion=emotion[idx][out],
             attitude=attitude[idx][out], text=text[out])


@system(phase="update", reads=(Action,), writes=(Mood,), resources=(SocialEvent,))
def relax_emotions(ctx):
    """Agents that did not act this tick calm down one level with probability ``relax``."""
    ev = ctx.resource(SocialEvent)
    v = ctx.query(Mood, Action)
    emo = v[Mood].emotion
    calm_down = (v[Action].tick != ctx.tick) & (emo > 0) & (ctx.rng("social:relax").random(v.ids) < ev.relax)
    if calm_down.any():
        v.set(Mood, emotion=(emo - calm_down).astype(np.int8))


@system(phase="post", reads=(Mood, Action), resources=(SocialEvent, SocialStats))
def record_metrics(ctx):
    """This tick's figures, reduced exactly over all ranks."""
    ev = ctx.resource(SocialEvent)
    ranks = world_ranks(ctx.world)
    v = ctx.query(Mood, Action)
    since, emo, att = v[Mood].aware_since, v[Mood].emotion, v[Mood].attitude
    aware = since >= 0
    acted = v[Action].tick == ctx.tick
    kind, outcome = v[Action].kind, v[Action].outcome
    n_aware = int_sum(ranks, aware)
    emotions = bincount(ranks, emo[aware], 3)
    acts = bincount(ranks, kind[acted], 3)
    outcomes = bincount(ranks, outcome[acted], 4)
    hist = histogram(ranks, att[aware].astype(np.float64), np.linspace(-1.0, 1.0, ev.bins + 1))
    row = {"tick": ctx.tick, "aware": n_aware, "new_aware": int_sum(ranks, since == ctx.tick),
           "aware_share": n_aware / max(1, int_sum(ranks, np.ones(len(v), np.int64))),
           "calm": int(emotions[0]), "moderate": int(emotions[1]), "intense": int(emotions[2])}
    for i, name in enumerate(prompts.EMOTIONS):
        row[f"{name}_share"] = float(emotions[i] / n_aware) if n_aware else float("nan")
    row.update({"attitude_mean": exact_mean(ranks, att[aware].astype(np.float64)),
                "acting": int(acts.sum()), "posts": int(acts[1]), "forwards": int(acts[2]), "idle": int(acts[0]),
                "fallback": int(outcomes[2] + outcomes[3])})
    row.update({f"attitude_bin_{i}": int(c) for i, c in enumerate(hist)})
    ctx.resource(SocialStats).history.append(row)


# ------------------------------------------------------------------------------------------ build
def choose_seeds(world: World, cfg: SocialConfig, ids: np.ndarray, follows) -> list[int]:
    """The global IDs of the seed agents (identical on every rank; collective for random / hubs)."""
    ranks = world_ranks(world)
    if cfg.seed_selection == "ids":
        return sorted(set(int(i) for i in cfg.seed_ids))
    if cfg.seed_selection == "hubs":  # most followers; ties by the smaller ID
        indeg = bincount(ranks, follows.values, cfg.agents)
        chosen, _ = top_k(ranks, ids, indeg[ids], cfg.seeds, largest=True)
    else:
        chosen, _ = top_k(ranks, ids, EntityRng(world.seed, "social:seeds", 0).random(ids), cfg.seeds,
                          largest=False)
    return sorted(int(i) for i in chosen)


def edges(cfg: SocialConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole follow graph as ``(src [m], dst [m])`` int64 (``src`` follows ``dst``), e.g. for
    ``socius.mpi.community_partition(np.arange(cfg.agents), src, dst, ranks)`` before ``build``."""
    cfg.validate()
    ids = np.arange(cfg.agents, dtype=np.int64)
    return edge_arrays(ids, _follows(cfg, ids, seed))


def _follows(cfg: SocialConfig, ids: np.ndarray, seed: int):
    try:
        return follow_graph(cfg.graph, ids, cfg.agents, seed, degree=cfg.degree, gamma=cfg.gamma,
                            rewire=cfg.rewire, edges_file=cfg.edges_file)
    except graph.GraphError as e:
        from socius.errors import ConfigError
        raise ConfigError(str(e)) from None


def build(world: World, cfg: SocialConfig) -> None:
    """Spawn this rank's agents with their follows, profiles and initial stances; set up the event."""
    cfg.validate()
    ids = owned_block(world, cfg.agents)   # all IDs on one rank; a rank's share (block or attached partition)
    follows = _follows(cfg, ids, world.seed)
    cols = sample_population(cfg.population_specs(), ids, world.seed)
    att0 = EntityRng(world.seed, "social:attitude", 0).normal(ids, cfg.attitude_mean, cfg.attitude_std)
    world.spawn(ids.shape[0], {
        Profile: {k: cols[k] for k in ("name", "age", "occupation", "trait")},
        Follows: {"ids": follows},
        Mood: {"attitude": np.clip(att0, -1.0, 1.0).astype(np.float32)},
        Inbox: {}, Action: {},
    }, ids=ids)
    world.insert_resource(SocialEvent(
        headline=cfg.headline, event_tick=cfg.event_tick, seeds=choose_seeds(world, cfg, ids, follows),
        news_stance=cfg.news_stance, news_emotion=prompts.EMOTIONS.index(cfg.news_emotion),
        shown_posts=cfg.shown_posts, react=cfg.react, activity=cfg.activity, relax=cfg.relax, bins=cfg.bins))
    world.insert_resource(SocialStats())
    world.insert_resource(SocialPrompts(decision=make_decision(cfg), dedup=cfg.dedup))
    ensure_environment(world)
    schedule_interventions(world, cfg.interventions)
    # interventions apply after the inbox is read, so one that sets Inbox.news adds the news item to it
    world.add_systems(read_posts, apply_interventions, inject_event, decide_actions, relax_emotions, record_metrics)


def metrics(world: World) -> dict:
    return history_columns(world.resource(SocialStats).history)


def report(world: World, out: Path) -> None:
    """``social.png``: aware agents, emotion density, attitude distribution, posts and forwards per tick."""
    if not is_lead(world):  # world-wide values only: one rank writes them
        return
    h = world.resource(SocialStats).history
    if not h:
        return
    plt = pyplot()
    if plt is None:
        return
    ticks = np.array([r["tick"] for r in h])
    fig, ax = plt.subplots(2, 2, figsize=(11, 7))
    a = ax[0, 0]
    a.plot(ticks, [r["aware"] for r in h], "o-", ms=3)
    a.set_title("Information propagation: agents aware of the event")
    a.set_xlabel("tick")
    a.set_ylabel("aware agents")
    b = ax[0, 1]
    shares = np.array([[r[f"{e}_share"] for e in prompts.EMOTIONS] for r in h], dtype=float)
    b.stackplot(ticks, np.nan_to_num(shares).T, labels=prompts.EMOTIONS, colors=["#8fbc8f", "#f0c05a", "#d9534f"])
    b.set_title("Emotion density among aware agents")
    b.set_xlabel("tick")
    b.set_ylim(0, 1)
    b.legend(loc="upper right", fontsize=8)
    c = ax[1, 0]
    bins = len([k for k in h[0] if k.startswith("attitude_bin_")])
    hist = np.array([[r[f"attitude_bin_{i}"] for i in range(bins)] for r in h], dtype=float)
    hist = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1.0)
    c.imshow(hist.T, origin="lower", aspect="auto", cmap="viridis",
             extent=(ticks[0] - 0.5, ticks[-1] + 0.5, -1.0, 1.0))
    c.plot(ticks, [r["attitude_mean"] for r in h], "w-", lw=1.5, label="mean")
    c.set_title("Attitude distribution among aware agents")
    c.set_xlabel("tick")
    c.set_ylabel("stance")
    c.legend(loc="upper right", fontsize=8)
    d = ax[1, 1]
    d.plot(ticks, [r["posts"] for r in h], "o-", ms=3, label="posts")
    d.plot(ticks, [r["forwards"] for r in h], "s-", ms=3, label="forwards")
    d.set_title("Posts and forwards per tick")
    d.set_xlabel("tick")
    d.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "social.png", dpi=110)
    plt.close(fig)


def _scenario():
    from socius.app.registry import Scenario
    return Scenario(name="social", summary="Information, emotion and attitude spread on a follow graph (S3)",
                    config=SocialConfig, build=build, metrics=metrics, unit="steps",
                    mock_policy=lambda cfg: social_policy(cfg.share, cfg.forward, cfg.novelty, cfg.dynamics,
                                                          cfg.influence),
                    report=report)


SCENARIO = _scenario()

__all__ = ["SCENARIO", "SocialConfig", "Profile", "Follows", "Mood", "Inbox", "Action", "Post", "SocialEvent",
           "SocialStats", "build", "edges", "metrics", "report", "choose_seeds"]
