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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from socius.components import ModelChoice
from socius.ecs import Component, Resource, Scalar, String, World, system
from socius.mpi import gather_ordered, owned_block, world_ranks
from socius.app.report import history_columns, is_lead, pyplot
from socius.llm import Decision, decide
from socius.llm import Sampling
from socius.population import BACKGROUND_STOP, background_prompts, parse_population, sample_population
from socius.llm import JsonReply, Number, TextReply
from socius.llm import Template

from . import game, prompts
from .mock import guess_policy

STR = np.dtypes.StringDType()


class Profile(Component):
    """A player's public profile, shown in its prompt."""

    name = String()
    gender = String()
    age = Scalar(np.int32)
    education = String()
    occupation = String()
    background = String()


class Team(Component):
    """Group index in the group game (``-1`` in the individual game)."""

    group = Scalar(np.int32, default=-1)


class Guess(Component):
    """This round's reported number and how the reply was obtained (see ``Outcome``)."""

    value = Scalar(np.float64)
    outcome = Scalar(np.int8)


class GuessGame(Resource):
    """Game parameters and the history every round adds to (saved in snapshots)."""

    p: float = 2 / 3
    nash: float = 0.0
    offset: float = 0.0
    max_value: int = 100
    groups: int = 0
    tolerance: float = 0.0
    history: list = field(default_factory=list)           # one dict of statistics per round
    winners_by: list = field(default_factory=list)        # rows: round, model, group, winners
    group_numbers: list = field(default_factory=list)     # per round: [k] group means
    histograms: list = field(default_factory=list)        # per round: counts of numbers rounded to 0..max_value


DEFAULT_POPULATION = {
    "name": {"dist": "categorical", "values": ["Alex", "Maria", "Wei", "Fatima", "John", "Aiko", "Carlos", "Olga",
                                               "Kwame", "Priya", "Tom", "Lena", "Omar", "Sofia", "Ivan", "Mei"]},
    "gender": {"dist": "categorical", "values": ["female", "male"]},
    "age": {"dist": "normal", "mean": 40, "std": 12, "low": 18, "high": 80, "dtype": "int"},
    "education": {"dist": "categorical", "values": ["High School", "Bachelor's Degree", "Master's Degree", "Ph.D."],
                  "weights": [0.35, 0.4, 0.18, 0.07]},
    "occupation": {"dist": "conditional", "on": "education", "cases": {
        "High School": {"dist": "categorical", "values": ["shop assistant", "driver", "farmer", "electrician"]},
        "Bachelor's Degree": {"dist": "categorical", "values": ["teacher", "accountant", "nurse", "software developer"]},
        "Master's Degree": {"dist": "categorical", "values": ["engineer", "economist", "lawyer", "data scientist"]},
        "Ph.D.": {"dist": "categorical", "values": ["professor", "researcher", "physician", "game theorist"]}}},
}
GAMES = ("classic", "nash10", "group")
PROFILE_KINDS = tuple(prompts.PROFILES)


@dataclass
class GuessConfig:
    """Options of ``socius run guess`` (also a ``--config`` TOML/JSON table); see the scenario README."""

    agents: int = 300
    game: str = "classic"             # classic | nash10 | group
    p: float = 2 / 3
    offset: float | None = None       # nash10: target = offset + p * mean; default 10 (1 - p): equilibrium 10
    max_value: int = 100
    groups: int = 3                   # group game: number of groups (one per model when models are given)
    prompt: str = "basic"             # basic | cot | rational | strategic
    reply_style: str = ""             # "" = the variant's default | direct | reasoned
    famous_note: bool = False         # "a variation of the famous 2/3 game" (§4.7)
    profile: str = "occupation"       # anonymous | name | education | occupation | background
    backgrounds: bool = False         # LLM-written character backgrounds before round 1 (profile = background)
    few_shot: bool = True
    extract: str = "fallback"         # fallback: an extraction call only for replies that do not parse | never
    temperature: float = 1.0
    max_tokens: int = 0               # 0: 16 for direct replies, 200 for reasoned ones
    win_tolerance: float = 0.0
    models: list[str] = field(default_factory=list)  # engine names for a mixture of LLMs (round-robin by ID)
    population: dict = field(default_factory=dict)   # per-attribute distributions (override the defaults)

    def validate(self) -> None:
        if self.agents < 1:
            raise ValueError(f"agents: must be >= 1, got {self.agents}")
        if self.game not in GAMES:
            raise ValueError(f"game: must be one of {', '.join(GAMES)}, got {self.game!r}")
        if not 0 < self.p < 1:
            raise ValueError(f"p: must be in (0, 1), got {self.p}")
        if self.max_value < 1:
            raise ValueError(f"max_value: must be >= 1, got {self.max_value}")
        if self.prompt not in prompts.VARIANTS:
            raise ValueError(f"prompt: must be one of {', '.join(prompts.VARIANTS)}, got {self.prompt!r}")
        if self.reply_style not in ("", *prompts.ANSWER_FORMAT):
            raise ValueError(f"reply_style: must be '', {', '.join(prompts.ANSWER_FORMAT)}, got {self.reply_style!r}")
        if self.profile not in PROFILE_KINDS:
            raise ValueError(f"profile: must be one of {', '.join(PROFILE_KINDS)}, got {self.profile!r}")
        if self.extract not in ("fallback", "never"):
            raise ValueError(f"extract: must be 'fallback' or 'never', got {self.extract!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        if self.max_tokens < 0:
            raise ValueError(f"max_tokens: must be >= 0, got {self.max_tokens}")
        if self.game == "group" and not 2 <= self.groups <= self.agents:
            raise ValueError(f"groups: the group game needs 2 <= groups <= agents, got {self.groups}")
        if self.win_tolerance < 0:
            raise ValueError(f"win_tolerance: must be >= 0, got {self.win_tolerance}")
        self.population_specs()  # raises naming population.<attr>.<field>

    def population_specs(self) -> dict:
        specs = parse_population({**DEFAULT_POPULATION, **self.population})
        missing = {"name", "gender", "age", "education", "occupation"} - set(specs)
        if missing:
            raise ValueError(f"population: the guess game needs attributes {sorted(missing)}")
        return specs

    @property
    def n_groups(self) -> int:
        if self.game != "group":
            return 0
        return len(self.models) if self.models else self.groups

    @property
    def nash(self) -> float:
        """The game's equilibrium: 0 for classic/group, offset / (1 - p) for nash10."""
        return 0.0 if self.game != "nash10" else self.offset_value / (1.0 - self.p)

    @property
    def offset_value(self) -> float:
        return (10.0 * (1.0 - self.p) if self.offset is None else self.offset) if self.game == "nash10" else 0.0


class GuessPrompts(Resource):
    """The two decisions of a run (first round, later rounds); rebuilt from the config, not saved."""

    __snapshot__ = False
    first: Decision = None
    later: Decision = None


def p_text(p: float) -> str:
    for num, den in ((2, 3), (1, 2), (1, 3), (3, 4), (1, 4)):
        if abs(p - num / den) < 1e-9:
            return f"{num}/{den}"
    return f"{p:g}"


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


@system(phase="update", reads=(Profile, Team, ModelChoice), writes=(Guess,), resources=(GuessGame, GuessPrompts))
def report_numbers(ctx):
    """Every player asks its LLM for this round's number (one batched pipeline call)."""
    g = ctx.resource(GuessGame)
    decision = ctx.resource(GuessPrompts).first if not g.history else ctx.resource(GuessPrompts).later
    v = ctx.query(Guess, Profile, Team, ModelChoice)
    last = g.history[-1] if g.history else None
    fields = {
        "p_text": p_text(g.p), "round": ctx.tick + 1, "max_value": g.max_value, "offset": f"{g.offset:g}",
        "n_groups": g.groups, "previous_winner": "" if last is None else f"{last['target']:.2f}",
        "group_numbers": prompts_group_numbers(g.group_numbers[-1]) if g.group_numbers else "",
        "name": v[Profile].name, "education": v[Profile].education, "occupation": v[Profile].occupation,
        "background": v[Profile].background, "group": v[Team].group + 1,
    }
    used = {k: fields[k] for k in decision.template.fields}
    models, adapters = v[ModelChoice].model, v[ModelChoice].adapter
    res = decide(ctx.world, decision, v.ids, used, models=models if (models != "").any() else None,
                 adapters=adapters if (adapters != "").any() else None)
    v.set(Guess, value=res.values["number"], outcome=res.outcome)


def prompts_group_numbers(means: list) -> str:
    return ", ".join(f"group {i + 1}: {m:.2f}" for i, m in enumerate(means) if m == m)


@system(phase="post", reads=(Guess, Team, ModelChoice), resources=(GuessGame,))
def score_round(ctx):
    """Statistics, target, winners (by model and group) of this round."""
    g = ctx.resource(GuessGame)
    v = ctx.query(Guess, Team, ModelChoice)
    # the round is scored over every player, in global ID order, whichever rank holds them
    ranks = world_ranks(ctx.world)
    if ranks.size > 1:
        cols = {"value": v[Guess].value, "outcome": v[Guess].outcome, "group": v[Team].group,
                "model": v[ModelChoice].model}
        everyone = {k: gather_ordered(ranks, v.ids, c)[1] for k, c in cols.items()}
    else:
        everyone = {"value": v[Guess].value, "outcome": v[Guess].outcome, "group": v[Team].group,
                    "model": v[ModelChoice].model}
    all_values = everyone["value"]
    valid = ~np.isnan(all_values)  # fallbacks (NaN) are left out, as AgentScope drops invalid replies
    values = np.where(valid, all_values, 0.0)
    stats = game.round_stats(all_values[valid])
    rnd = ctx.tick + 1
    if g.groups > 0:
        team = everyone["group"]
        means = game.group_means(all_values[valid], team[valid], g.groups)
        target = game.target_of(game.exact_mean(means[~np.isnan(means)]), g.p, g.nash)
        win_groups = game.winners(np.nan_to_num(means, nan=1e9), target, g.tolerance)
        won = win_groups[team]
        g.group_numbers.append([float(x) for x in means])
        winning_number = float(means[win_groups][0])
    else:
        target = game.target_of(stats["mean"], g.p, g.nash)
        won = game.winners(np.where(valid, values, np.inf), target, g.tolerance) & valid
        winning_number = float(values[won][0]) if won.any() else float("nan")
    outcome = everyone["outcome"]
    bins = np.clip(np.round(all_values[valid]).astype(np.int64), 0, g.max_value)
    g.histograms.append([int(c) for c in np.bincount(bins, minlength=g.max_value + 1)])
    g.history.append({"round": rnd, **stats, "target": float(target), "winning_number": winning_number,
                      "valid": int(valid.sum()),
                      "winners": int(won.sum()), "ok": int((outcome == 0).sum()),
                      "extracted": int((outcome == 1).sum()), "fallback": int((outcome == 2).sum()),
                      "failed": int((outcome == 3).sum())})
    models, team = everyone["model"], everyone["group"]
    for m in np.unique(models[won]):  # a handful of (model, group) pairs, not a loop over agents
        for t in np.unique(team[won & (models == m)]):
            n_won = int((won & (models == m) & (team == t)).sum())
            g.winners_by.append({"round": rnd, "model": str(m) or "default", "group": int(t), "winners": n_won})


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
    a re-run with the same seed and population reuses the backgrounds.
    """
    ids = world.ids_of(Profile)
    meta = background_prompts({k: cols[k] for k in ("name", "gender", "age", "education", "occupation")})
    d = Decision("background", Template("{prompt}"), TextReply(), fallback={"text": ""},
                 sampling=Sampling(temperature=0.8, max_tokens=120, stop=(BACKGROUND_STOP,)), extract=None,
                 cache=True)
    res = decide(world, d, ids, {"prompt": meta}, models=models if (models != "").any() else None)
    text = np.where(res.values["text"] != "", res.values["text"], world.get(Profile, "background")).astype(STR)
    world.set(Profile, ids, background=text)


def metrics(world: World) -> dict:
    return history_columns(world.resource(GuessGame).history)


def report(world: World, out: Path) -> None:
    """``winners.parquet`` and a plot of the reported numbers per round (needs matplotlib)."""
    if not is_lead(world):  # world-wide values only: one rank writes them
        return
    g = world.resource(GuessGame)
    if g.winners_by:
        pq.write_table(pa.Table.from_pylist(g.winners_by), out / "winners.parquet")
    if not g.history:  # no round played: nothing to plot
        return
    plt = pyplot()
    if plt is None:
        return
    rounds = [r["round"] for r in g.history]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    xs = np.arange(g.max_value + 1)
    cmap = plt.get_cmap("viridis")
    for i, h in enumerate(g.histograms):
        h = np.asarray(h, dtype=float)
        ax.step(xs, h / max(h.sum(), 1.0), where="mid", color=cmap(i / max(len(g.histograms) - 1, 1)),
                label=f"round {i + 1}")
    ax.set_xlabel("reported number")
    ax.set_ylabel("share of players")
    ax.set_title(f"Guess {p_text(g.p)} of the average: reported numbers per round")
    ax.legend(fontsize=8)
    bx.plot(rounds, [r["mean"] for r in g.history], "o-", label="mean")
    bx.plot(rounds, [r["median"] for r in g.history], "s--", label="median")
    bx.plot(rounds, [r["target"] for r in g.history], "^-", label="winning number (target)")
    bx.fill_between(rounds, [r["min"] for r in g.history], [r["max"] for r in g.history], alpha=0.15,
                    label="min–max")
    bx.set_xlabel("round")
    bx.set_xticks(rounds)
    bx.set_ylim(0, g.max_value)
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "guess_rounds.png", dpi=110)
    plt.close(fig)


def _scenario():
    from socius.app.registry import Scenario
    return Scenario(name="guess", summary="Guess p of the average (AgentScope §4) with LLM agents",
                    config=GuessConfig, build=build, metrics=metrics, unit="rounds",
                    mock_policy=lambda cfg: guess_policy(cfg.p, cfg.max_value), report=report)


SCENARIO = _scenario()
