"""Rule judge of the job market: a seeker applies to the openings that fit its skills, place and pay.

The ``apply`` prompt lists the ads the seeker saw (``N. Title at Firm (City).
Requirements: a, b, c; at least E years of experience. Salary Lk to Hk a
year. (match m)``); the seeker's profile comes from the run's final world
(:class:`~.components.Seeker` by entity: skills, experience, city, expected
salary — they never change) or, without a world, from the CV in the prompt.
An ad **fits** when it shares at least one skill with the seeker, asks at
most ``EXPERIENCE_SLACK`` years more than the seeker has, is in the
seeker's city, and its top salary reaches ``PAY_SLACK`` of what the seeker
hopes for. Scores per reply, with A the ads applied to and F the fitting ones:

=====  ====================================================================
1      names an ad number not on the list, or applies only to unfit ads
2–3    applies to some unfit ads: 1 + ⌊3 · share of A that fits⌋
3      applies to nothing although some ads fit
4      applies only to fitting ads but misses some
5      applies to exactly the fitting ads (or to none when none fit)
=====  ====================================================================
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import STR
from socius.correct.judges import RuleJudge, contains, extract, extract_number

EXPERIENCE_SLACK = 1
PAY_SLACK = 0.9
MAX_ADS = 12


def _seeker(replies: pa.Table, world) -> dict[str, np.ndarray]:
    """``[m]`` skills, experience, city and expected pay of each reply's seeker (world first, else the CV)."""
    prompt = replies.column("prompt")
    cols = {"skills": extract(prompt, r"Skills: (?P<v>[^.\n]*)\."),
            "experience": extract_number(prompt, r"Your CV: (?P<v>\d+) years of experience"),
            "location": extract(prompt, r"Based in (?P<v>[^.\n]*)\."),
            "expected": extract_number(prompt, r"hope for about (?P<v>\d+(?:\.\d+)?)k")}
    if world is not None:
        from .components import Seeker
        ent = replies.column("entity").to_numpy(zero_copy_only=False)
        if world.count(Seeker):
            known = world.has(ent, Seeker)
            if known.any():
                for k in cols:
                    vals = world.get(Seeker, k, ent[known])
                    col = np.array(cols[k], dtype=STR if k in ("skills", "location") else np.float64)
                    col[known] = vals
                    cols[k] = col
    return cols


def judge_applications(replies: pa.Table, world=None) -> tuple[np.ndarray, np.ndarray]:
    """``(score [m] int8, rationale [m] str)`` for ``apply`` replies (see the module docstring)."""
    m = replies.num_rows
    prompt, reply = replies.column("prompt"), replies.column("completion")
    me = _seeker(replies, world)
    block = extract(prompt, r"(?s)Job ads found for you[^\n]*\n(?P<v>.*?)\n\n")
    lists = pc.split_pattern(pa.array(block.astype(object), pa.large_string()), pattern="\n")
    parent = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), np.int64)
    lines = lists.flatten()
    pos = extract_number(lines, r"^(?P<v>\d+)\. ")
    ok_line = ~np.isnan(pos)
    reqs = extract(lines, r"Requirements: (?P<v>[^;]*);")
    need = extract_number(lines, r"at least (?P<v>\d+) years")
    city = extract(lines, r" at [^(\n]*\((?P<v>[^)]*)\)\.")
    high = extract_number(lines, r"Salary \d+(?:\.\d+)?k to (?P<v>\d+(?:\.\d+)?)k")
    # skills shared: each requirement of each ad looked up in its seeker's skill list (elementwise find)
    req_lists = pc.split_pattern(pa.array(reqs.astype(object), pa.large_string()), pattern=", ")
    line_of = np.asarray(pc.list_parent_indices(req_lists).to_numpy(zero_copy_only=False), np.int64)
    req_skill = np.asarray(req_lists.flatten().to_numpy(zero_copy_only=False)).astype(STR)
    mine = np.strings.add(np.strings.add(", ", me["skills"].astype(STR)), ",")[parent[line_of]]
    hit = (req_skill != "") & (np.strings.find(mine, np.strings.add(np.strings.add(", ", req_skill), ",")) >= 0)
    shared = np.bincount(line_of, weights=hit, minlength=len(lines)) > 0
    fits = (ok_line & shared & (need <= me["experience"][parent] + EXPERIENCE_SLACK)
            & (city == me["location"].astype(STR)[parent]) & (high >= PAY_SLACK * me["expected"][parent]))
    # what was applied to: the numbers in {"apply": "..."}
    chosen = extract(reply, r'"apply"\s*:\s*"(?P<v>[^"]*)"')
    named = np.zeros((m, MAX_ADS + 1), dtype=bool)
    for k in range(1, MAX_ADS + 1):  # list positions, not rows
        named[:, k] = np.asarray(pc.match_substring_regex(pa.array(chosen.astype(object), pa.large_string()), rf"(^|[^0-9]){k}([^0-9]|$)")
                                 .to_numpy(zero_copy_only=False), dtype=bool)
    listed = np.zeros((m, MAX_ADS + 1), dtype=bool)
    fit_at = np.zeros((m, MAX_ADS + 1), dtype=bool)
    p = np.clip(np.nan_to_num(pos).astype(np.int64), 0, MAX_ADS)
    listed[parent[ok_line], p[ok_line]] = True
    fit_at[parent[fits], p[fits]] = True
    digits = pc.extract_regex(pa.array(chosen.astype(object), pa.large_string()), r"(?P<v>\d+)")  # any number at all named
    any_number = np.asarray(digits.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    bad_number = (named & ~listed).any(axis=1) | (any_number & ~named.any(axis=1))
    a = (named & listed).sum(axis=1)
    good = (named & fit_at).sum(axis=1)
    f = fit_at.sum(axis=1)
    share = np.where(a > 0, good / np.maximum(a, 1), 0.0)
    parsed = contains(reply, r'"apply"\s*:\s*"')
    score = np.select(
        [~parsed | bad_number, (a > 0) & (good < a), (a == 0) & (f > 0), (a > 0) & (good < f)],
        [1, 1 + np.floor(3 * share), 3, 4], 5).astype(np.int8)
    why = np.select(
        [~parsed, bad_number, (a > 0) & (good == 0), (a > 0) & (good < a), (a == 0) & (f > 0), (a > 0) & (good < f)],
        ["no list of ads in the reply", "names an ad that is not on the list", "applies only to ads that do not fit",
         "applies to some ads that do not fit", "applies to nothing although some ads fit",
         "applies only to fitting ads but misses some"],
        "applies to exactly the ads that fit")
    return score, why


JUDGES = (RuleJudge("jobs_apply", ("apply",), judge_applications, world=True,
                    help="a seeker applies to the openings that fit its skills, city, experience and pay"),)
