"""Build and registration of ``socius run social``.

:func:`build` spawns this rank's agents (explicit global IDs from
``owned_block``, so a seed gives the same state on any number of ranks) with
their follows, profiles and initial stances, inserts the event, the metrics
history and the decision, and adds the systems in schedule order.
:data:`SCENARIO` is what the registry finds under ``social``.
"""
from __future__ import annotations

import numpy as np

from socius.app.registry import Scenario
from socius.ecs import World
from socius.ecs.rng import EntityRng
from socius.errors import ConfigError
from socius.llm import Choice, Decision, JsonReply, Number, Sampling, Template, Text
from socius.mpi import bincount, owned_block, top_k, world_ranks
from socius.population import sample_population
from socius.systems import apply_interventions, ensure_environment, schedule_interventions

from . import graph, prompts
from .components import TEXT_CHARS, Action, Follows, Inbox, Mood, Profile, SocialEvent, SocialPrompts, SocialStats
from .config import SocialConfig
from .graph import edge_arrays, follow_graph
from .judges import JUDGES
from .mock import social_policy
from .report import metrics, report
from .systems import decide_actions, inject_event, read_posts, record_metrics, relax_emotions


def make_decision(cfg: SocialConfig) -> Decision:
    """The one decision of a run: the few-shot prompt and a JSON reply (action, emotion, attitude, text)."""
    schema = JsonReply(action=Choice(*prompts.ACTIONS), emotion=Choice(*prompts.EMOTIONS),
                       attitude=Number(-1, 1), text=Text(max_length=TEXT_CHARS))
    return Decision("social", Template(prompts.decision_text(cfg.few_shot)), schema,
                    fallback={"action": "idle", "emotion": "calm", "attitude": 0.0, "text": ""},
                    sampling=Sampling(temperature=cfg.temperature, max_tokens=cfg.max_tokens, stop=prompts.STOP))


def choose_seeds(world: World, cfg: SocialConfig, ids: np.ndarray, follows) -> list[int]:
    """The global IDs of the seed agents (identical on every rank; collective for random / hubs)."""
    ranks = world_ranks(world)
    if cfg.seed_selection == "ids":
        return sorted({int(i) for i in cfg.seed_ids})
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


def _mock_policy(cfg: SocialConfig):
    return social_policy(cfg.share, cfg.forward, cfg.novelty, cfg.dynamics, cfg.influence)


SCENARIO = Scenario(name="social", summary="Information, emotion and attitude spread on a follow graph (S3)",
                    config=SocialConfig, build=build, metrics=metrics, unit="steps", mock_policy=_mock_policy,
                    report=report,
                    judges=JUDGES)
