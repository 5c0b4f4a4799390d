"""Build and registration of ``socius run recommender``.

:func:`build` loads the catalogue, inserts the run's resources (the setup,
rebuilt from the config, and the saved shared state), spawns this rank's
users (explicit global IDs from ``owned_block``, every value keyed by entity
ID, so a seed gives the same state on any number of ranks) and adds the
environment's systems and the scenario's in schedule order.
:data:`SCENARIO` is what the registry finds under ``recommender``; it adds
the ``socius experiment fluctuation`` command (:mod:`.fluctuation`).
"""
from __future__ import annotations

import numpy as np

from socius.app.registry import Scenario
from socius.components.memory import LongTermMemory, ShortTermMemory
from socius.components.profile import Profile
from socius.ecs import STR, World
from socius.ecs.ragged import RaggedArray
from socius.mpi import owned_block
from socius.systems import (MemoryEmbedder, MemoryParams, ensure_environment, environment_systems,
                            schedule_interventions)

from . import prompts
from .components import Choice, Friends, History, Page, RecSetup, RecState, Taste, Traits
from .config import RecommenderConfig
from .data import GENRES, Catalogue, load_catalogue
from .fluctuation import FLUCTUATION
from .judges import JUDGES
from .mock import recommender_policy
from .report import metrics, report
from .systems import browse_page, record_tick, recommend_items, refit_model
from .users import taste_phrases, user_columns


def _embeddings(cfg: RecommenderConfig, cat: Catalogue):
    """``(item_vecs [M, d], genre_vecs [20, d], VectorIndex)`` for the content recommender."""
    from socius.text.embed import make_embedder
    from socius.text.vector_index import VectorIndex

    emb = make_embedder(cfg.embedder)
    text = np.strings.add(np.strings.add(cat.title, ". "), np.strings.replace(cat.genre_names(), "|", ", "))
    item_vecs = emb.embed(text)
    genre_vecs = emb.embed(np.array([f"{g} movies" for g in GENRES], dtype=STR))
    return item_vecs, genre_vecs, VectorIndex.build(np.arange(cat.n_items, dtype=np.int64), item_vecs)


def _friends(world: World, cfg: RecommenderConfig, ids: np.ndarray) -> RaggedArray:
    """``friends`` other users per user (``[n]`` ragged int64), drawn by entity ID."""
    k = min(cfg.friends, cfg.agents - 1)
    if k <= 0:
        return RaggedArray.empty(ids.shape[0], np.int64)
    x = world.rng("friends", 0).integers(ids, 0, cfg.agents - 1, size=k)
    return RaggedArray.from_lengths(np.full(ids.shape[0], k), (x + (x >= ids[:, None])).reshape(-1))


def build(world: World, cfg: RecommenderConfig) -> None:
    """Load the catalogue, spawn the users (this rank's share), set up the recommender and the systems."""
    cfg.validate()
    cat = load_catalogue(cfg.data)
    setup = RecSetup(cfg=cfg, cat=cat, labels=prompts.item_labels(cat),
                     browse=prompts.browse_decision(cfg.temperature, cfg.max_tokens))
    if cfg.recommender == "content":
        setup.item_vecs, setup.genre_vecs, setup.index = _embeddings(cfg, cat)
    world.insert_resource(setup)
    m = cat.n_items
    world.insert_resource(RecState(counts=cat.counts(), half_sums=cat.half_star_sums(),
                                   recommended=np.zeros(m, bool), watched=np.zeros(m, bool)))
    ids = owned_block(world, cfg.agents)
    cols = user_columns(cfg.population, cfg.taste, cfg.taste_concentration, cat, ids, world.seed)
    likes, dislikes = taste_phrases(cols["taste"])
    background = np.strings.add(np.strings.add(np.strings.add("likes ", likes), " films; dislikes "), dislikes)
    components = {
        Profile: {"name": cols["name"], "gender": cols["gender"], "age": np.asarray(cols["age"], np.int32),
                  "occupation": cols["occupation"], "background": background},
        Traits: {"activity": np.asarray(cols["activity"], np.float32),
                 "conformity": np.asarray(cols["conformity"], np.float32)},
        Taste: {"genres": cols["taste"]}, Friends: {"ids": _friends(world, cfg, ids)},
        History: {}, Page: {}, Choice: {"shown": np.nan}, ShortTermMemory: {}}
    if cfg.long_memory:  # [n, 32, 384] float16 embedded memories per user, retrieved by relevance to the page
        from socius.text.embed import make_embedder
        world.insert_resource(MemoryEmbedder(make_embedder(cfg.embedder)))
        world.insert_resource(MemoryParams(top_k=max(cfg.memories, 1)))
        components[LongTermMemory] = {}
    world.spawn(ids.shape[0], components, ids=ids)
    ensure_environment(world)  # interventions scheduled in the config apply in `pre`, before the recommender
    world.add_systems(*environment_systems(), refit_model, recommend_items, browse_page, record_tick)
    schedule_interventions(world, cfg.interventions)


def mock_policy(cfg: RecommenderConfig):
    """The mock engine's policy for this config (:mod:`.mock`)."""
    return recommender_policy(cfg, load_catalogue(cfg.data))


SCENARIO = Scenario(name="recommender", summary="Movie recommender with LLM users: watch, rate, chat, post "
                    "(RecAgent / GenSim §2.1)", config=RecommenderConfig, build=build, metrics=metrics,
                    unit="steps", mock_policy=mock_policy, report=report, commands=(FLUCTUATION,),
                    judges=JUDGES)
