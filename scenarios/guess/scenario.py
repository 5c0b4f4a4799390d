"""Build and registration of ``socius run guess``.

:func:`make_decision` turns the config into the guess decision of round 1
or of later rounds (template, regex-constrained reply, extraction call).
:func:`build` samples this rank's players (explicit global IDs from
``owned_block``, so a seed gives the same state on any number of ranks),
optionally has the LLM write their backgrounds (:func:`write_backgrounds`,
before round 1), inserts the game and its decisions, and adds the systems.
:data:`SCENARIO` is what the registry finds under ``guess``.
"""
from __future__ import annotations

import numpy as np

from socius.app.registry import Scenario
from socius.components import ModelChoice
from socius.ecs import STR, World
from socius.llm import Decision, JsonReply, Number, Sampling, Template, TextReply, decide
from socius.mpi import owned_block
from socius.population import BACKGROUND_STOP, background_prompts, sample_population

from . import prompts
from .components import Guess, GuessGame, GuessPrompts, Profile, Team
from .config import GuessConfig
from .judges import JUDGES
from .mock import guess_policy
from .report import metrics, report
from .systems import report_numbers, score_round


def make_decision(cfg: GuessConfig, first_round: bool) -> Decision:
    """The guess decision for round 1 or later rounds: template, regex-constrained reply, extraction."""
    style = cfg.reply_style or prompts.VARIANTS[cfg.prompt][1]
    text = prompts.decision_template(cfg.game, cfg.prompt, profile=cfg.profile, first_round=first_round,
                                     style=style, famous_note=cfg.famous_note, few_shot=cfg.few_shot)
    sampling = Sampling(temperature=cfg.temperature, max_tokens=cfg.max_tokens or (16 if style == "direct" else 200),
                        stop=prompts.STOP[style], structured={"regex": prompts.REPLY_REGEX[style]})
    extract = Template(prompts.EXTRACT_PROMPT, untrusted=("reply",)) if cfg.extract == "fallback" else None
    return Decision("guess", Template(text), JsonReply(number=Number(0, cfg.max_value)),
                    fallback={"number": np.nan}, sampling=sampling, extract=extract,
                    extract_sampling=Sampling(temperature=0.0, max_tokens=16, stop=prompts.STOP["extract"],
                                              structured={"regex": prompts.EXTRACT_REGEX}))


def build(world: World, cfg: GuessConfig) -> None:
    """Sample the players (and optionally their LLM-written backgrounds), set up the game and its systems."""
    cfg.validate()
    world.insert_resource(GuessGame(p=cfg.p, nash=cfg.nash, offset=cfg.offset_value, max_value=cfg.max_value,
                                    groups=cfg.n_groups, tolerance=cfg.win_tolerance))
    world.insert_resource(GuessPrompts(first=make_decision(cfg, True), later=make_decision(cfg, False)))
    ids = owned_block(world, cfg.agents, first=world.next_id)  # this rank's players (all of them on one rank)
    n = ids.shape[0]
    cols = sample_population(cfg.population_specs(), ids, world.seed)
    profile = {k: cols[k] for k in ("name", "gender", "age", "education", "occupation") if k in cols}
    profile["background"] = Template("a {age}-year-old {gender} {occupation} ({education})").render(
        {k: cols[k] for k in ("age", "gender", "occupation", "education")}, n)
    models = np.array(cfg.models, dtype=STR)[ids % len(cfg.models)] if cfg.models else np.full(n, "", STR)
    team = np.full(n, -1, np.int32)
    if cfg.game == "group":  # one group per model (the paper's §4.6), else blocks by ID
        team = (ids % len(cfg.models) if cfg.models else ids % cfg.groups).astype(np.int32)
    world.spawn(n, {Profile: profile, Team: {"group": team}, ModelChoice: {"model": models},
                    Guess: {"value": np.nan}}, ids=ids)
    if cfg.backgrounds:
        write_backgrounds(world, cols, models)
    world.add_systems(report_numbers, score_round)


def write_backgrounds(world: World, cols: dict, models: np.ndarray) -> None:
    """One batched LLM call writes every player's character background (AgentScope §3.3, App. B).

    Players with identical attributes share one prompt; with sampling on, each
    still gets its own completion. Runs before round 1 (tick 0), so the
    response log and replay cover it; with a response cache (``SOCIUS_CACHE``),
    a re-run with the same seed and population reuses the backgrounds. A
    player whose reply is empty keeps the one-line profile it was spawned with.
    """
    ids = world.ids_of(Profile)
    meta = background_prompts({k: cols[k] for k in ("name", "gender", "age", "education", "occupation")})
    d = Decision("background", Template("{prompt}"), TextReply(), fallback={"text": ""},
                 sampling=Sampling(temperature=0.8, max_tokens=120, stop=(BACKGROUND_STOP,)), extract=None,
                 cache=True)
    res = decide(world, d, ids, {"prompt": meta}, models=models if (models != "").any() else None)
    text = res.values["text"]
    written = text != ""
    world.set(Profile, ids[written], background=text[written])


SCENARIO = Scenario(name="guess", summary="Guess p of the average (AgentScope §4) with LLM agents",
                    config=GuessConfig, build=build, metrics=metrics, unit="rounds",
                    mock_policy=lambda cfg: guess_policy(cfg.p, cfg.max_value), report=report,
                    judges=JUDGES)
