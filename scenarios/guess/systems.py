"""The tick of the guess game: every player reports a number, then the round is scored.

``update``: :func:`report_numbers` asks every player's LLM at once (one
batched :func:`socius.llm.decide` call; the prompt shows last round's
winning number). ``post``: :func:`score_round` scores the round over every
player in global ID order, whichever rank holds them, and appends its
statistics, histogram and winners to :class:`~.components.GuessGame`. The
per-(model, group) winner counts loop over a handful of pairs, never over
agents.
"""
from __future__ import annotations

import numpy as np

from socius.components import ModelChoice
from socius.ecs import system
from socius.llm import LLM, Outcome, decide
from socius.mpi import gather_ordered, world_ranks

from . import game
from .components import Guess, GuessGame, GuessPrompts, Profile, Team
from .prompts import group_numbers_text, p_text


@system(phase="update", reads=(Profile, Team, ModelChoice), writes=(Guess,),
        resources=(GuessGame, GuessPrompts, LLM))
def report_numbers(ctx):
    """Every player asks its LLM for this round's number (one batched pipeline call)."""
    g = ctx.resource(GuessGame)
    decision = ctx.resource(GuessPrompts).first if not g.history else ctx.resource(GuessPrompts).later
    v = ctx.query(Guess, Profile, Team, ModelChoice)
    last = g.history[-1] if g.history else None
    fields = {
        "p_text": p_text(g.p), "round": ctx.tick + 1, "max_value": g.max_value, "offset": f"{g.offset:g}",
        "n_groups": g.groups, "previous_winner": "" if last is None else f"{last['target']:.2f}",
        "group_numbers": group_numbers_text(g.group_numbers[-1]) if g.group_numbers else "",
        "name": v[Profile].name, "education": v[Profile].education, "occupation": v[Profile].occupation,
        "background": v[Profile].background, "group": v[Team].group + 1,
    }
    used = {k: fields[k] for k in decision.template.fields}
    models, adapters = v[ModelChoice].model, v[ModelChoice].adapter
    res = decide(ctx, decision, v.ids, used, models=models if (models != "").any() else None,
                 adapters=adapters if (adapters != "").any() else None)
    v.set(Guess, value=res.values["number"], outcome=res.outcome)


@system(phase="post", reads=(Guess, Team, ModelChoice), resources=(GuessGame,))
def score_round(ctx):
    """Statistics, target, winners (by model and group) of this round."""
    g = ctx.resource(GuessGame)
    v = ctx.query(Guess, Team, ModelChoice)
    # the round is scored over every player, in global ID order, whichever rank holds them
    everyone = {"value": v[Guess].value, "outcome": v[Guess].outcome, "group": v[Team].group,
                "model": v[ModelChoice].model}
    ranks = world_ranks(ctx)
    if ranks.size > 1:
        everyone = {k: gather_ordered(ranks, v.ids, c)[1] for k, c in everyone.items()}
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
                      "winners": int(won.sum()), "ok": int((outcome == Outcome.OK).sum()),
                      "extracted": int((outcome == Outcome.EXTRACTED).sum()),
                      "fallback": int((outcome == Outcome.FALLBACK).sum()),
                      "failed": int((outcome == Outcome.FAILED).sum())})
    models, team = everyone["model"], everyone["group"]
    for m in np.unique(models[won]):  # a handful of (model, group) pairs, not a loop over agents
        for t in np.unique(team[won & (models == m)]):
            n_won = int((won & (models == m) & (team == t)).sum())
            g.winners_by.append({"round": rnd, "model": str(m) or "default", "group": int(t), "winners": n_won})
