"""Guess p of the average (AgentScope's large-scale paper, §4), with LLM agents.

N players report a number in [0, 100] each round; the one closest to
``p × mean`` wins (or to ``p × mean + (1 − p) × 10`` in the variant whose
equilibrium is 10). From round 2 everyone sees the previous winning number;
in the group game (``groups = k``) a group's number is its members' mean and
everyone sees all groups' numbers. Players carry a profile (name, age,
education, occupation) sampled from declared distributions, and optionally
an LLM-written background. Agents may use different models (``models``).

One system asks every player's LLM at once (:func:`socius.llm.decide`);
another scores the round. Per round: mean, median, std, min, max, mode,
winners by model and group → ``metrics.parquet``, ``winners.parquet``, a
printed table and ``guess_rounds.png``.

Modules: :mod:`.components` (schemas), :mod:`.config` (options),
:mod:`.game` (rules and exact statistics), :mod:`.prompts` and
:mod:`.few_shot` (the decision's text), :mod:`.systems` (the tick),
:mod:`.scenario` (build and registration), :mod:`.report` (metrics,
``winners.parquet``, ``guess_rounds.png``), :mod:`.mock` (the mock engine's
policy).
"""
from . import game, prompts
from .components import Guess, GuessGame, GuessPrompts, Profile, Team
from .config import DEFAULT_POPULATION, GAMES, PROFILE_KINDS, GuessConfig
from .mock import guess_policy
from .report import metrics, report
from .scenario import SCENARIO, build, make_decision, write_backgrounds
from .systems import report_numbers, score_round

__all__ = ["SCENARIO", "GuessConfig", "DEFAULT_POPULATION", "GAMES", "PROFILE_KINDS", "Profile", "Team", "Guess",
           "GuessGame", "GuessPrompts", "build", "make_decision", "write_backgrounds", "metrics", "report",
           "report_numbers", "score_round", "guess_policy", "game", "prompts"]
