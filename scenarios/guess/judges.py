"""Rule judges of the guess game: two views of "plays well", from different evidence.

``guess_number`` reads only the logged prompt (the rules, the range, the ratio,
the agent's own round line) and the reply, vectorised over rows with Arrow
regex kernels. Scores, worst finding first:

=====  ====================================================================
score  finding
=====  ====================================================================
1      no number, or a number outside 0..max_value
2      a number above the highest possible target (offset + p · max: it can
       never win; not checked in the group game), or reasoning that
       contradicts the answer (names another number as the pick, or says
       "below/lower" the last winning number and answers above it, or
       "above/higher" and answers below it)
3      a number in range, but in prose, not the asked ``{"number": N}``
4      a later round's number above the last winning number (the target
       falls round by round; the paper's agents move down)
5      none of the above
=====  ====================================================================

It also rewrites every reply below 5 (so SFT and DPO have targets without an
LLM judge): the number becomes one step of the game's reasoning below what was
wrong, ``offset + p · min(number, last winning number, highest possible
target)``, at most the last winning number and rounded down (no number: the
range's top in place of the number), in the
reply's own ``{"number": N}``. A reply whose reasoning names another number is
not rewritten (the reasoning would need it too).

``guess_outcome`` (``world=True``) never reads the rules: it scores the number
by its distance to the target the round actually had (``GuessGame.history`` of
the run's world, round = tick + 1), in bands of the range: within 5 % → 5,
10 % → 4, 20 % → 3, 40 % → 2, farther or no number → 1. The correction
experiment trains on one and scores with the other.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from socius.ecs import STR
from socius.correct.judges import RuleJudge, contains, extract, extract_number, first_finding
from socius.correct.labels import LabelError

from .components import GuessGame

_NUM = r"-?\d+(?:\.\d+)?"


def _rule(prompt) -> tuple[np.ndarray, np.ndarray]:
    """``(offset [m], p [m])`` of the target rule offset + p · average (p NaN in the group game)."""
    rule = r"closest to (?:\d+(?:\.\d+)? plus )?"
    num = extract_number(prompt, rule + rf"(?P<v>{_NUM})(?:/\d+)? of the average of all reported")
    den = extract_number(prompt, rule + rf"{_NUM}/(?P<v>\d+) of the average of all reported")
    offset = np.nan_to_num(extract_number(prompt, rf"closest to (?P<v>{_NUM}) plus"))
    return offset, num / np.where(np.isnan(den), 1.0, den)


def _number(reply) -> tuple[np.ndarray, np.ndarray]:
    """``(x [m], in_json [m])``: the reported number (the JSON one, else the last number written; NaN if
    none) and the JSON one alone."""
    in_json = extract_number(reply, rf'"number"\s*:\s*(?P<v>{_NUM})')
    prose = extract_number(reply, rf"(?s).*?(?P<v>{_NUM})\D*$")          # the last number written
    return np.where(np.isnan(in_json), prose, in_json), in_json


def judge_numbers(replies: pa.Table, world=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(score [m] int8, rationale [m] str, revision [m] str)`` for guess replies (see the module
    docstring); the revision is ``""`` where the rule has no rewrite."""
    prompt, reply = replies.column("prompt"), replies.column("completion")
    top = extract_number(prompt, rf"between 0 and (?P<v>{_NUM}), inclusive")
    top = np.where(np.isnan(top), 100.0, top)
    x, in_json = _number(reply)
    offset, p = _rule(prompt)
    bound = offset + p * top                                                 # the largest target there can be
    line = extract(prompt, r"(?s).*\n(?P<v>Round \d+\.[^\n]*)")               # the agent's own round line
    last = extract_number(line, rf"winning number (?:of the previous round )?was (?P<v>{_NUM})")
    reasoning = extract(reply, r"(?s)^(?P<v>.*)\nAnswer:")
    named = extract_number(reasoning, rf"(?i)(?:pick|choose|go with|report|guess|answer)\D{{0,12}}(?P<v>{_NUM})")
    says_below = contains(reasoning, r"\b(below|lower|under|less than|smaller)\b")
    says_above = contains(reasoning, r"\b(above|higher|more than|larger|raise)\b") & ~says_below
    no_number = np.isnan(x) | (x < 0) | (x > top)
    dominated = ~np.isnan(bound) & (x > bound + 1e-9)
    contradicts = ((~np.isnan(named) & (np.abs(named - x) > 0.5))
                   | (~np.isnan(last) & says_below & (x >= last)) | (~np.isnan(last) & says_above & (x <= last)))
    off_format = np.isnan(in_json)
    above_last = ~np.isnan(last) & (x > last)
    fmt = lambda v: np.strings.mod("%g", np.nan_to_num(v))  # noqa: E731
    checks = [
        (no_number, 1, np.strings.add("no number in 0..", fmt(top))),
        (dominated, 2, np.strings.add("above the highest possible target ", fmt(bound))),
        (contradicts, 2, "the reasoning contradicts the answer"),
        (off_format, 3, 'in range, but not in the asked {"number": N} format'),
        (above_last, 4, np.strings.add("above last round's winning number ", fmt(last))),
    ]
    score = np.full(replies.num_rows, 5, np.int8)
    why = np.full(replies.num_rows, "in range and consistent", dtype=STR)
    score, why = first_finding(score, why, checks)
    # the rewrite: one reasoning step below what was wrong, in the reply's own format
    ref = np.fmin(np.fmin(np.where(no_number, top, x), last), bound)
    fine = ~(no_number | dominated | above_last)
    new = np.where(fine, x, np.floor(np.fmin(np.fmin(offset + p * ref, last), bound)))
    head = extract(reply, rf'(?s)^(?P<v>.*"number"\s*:\s*){_NUM}')
    tail = extract(reply, rf'"number"\s*:\s*{_NUM}(?P<v>(?s).*)$')
    direct = contains(prompt, r"Answer:\s*$")
    text = np.where(~np.isnan(in_json), np.strings.add(np.strings.add(head, fmt(new)), tail),
                    np.strings.add(np.strings.add(' {"number": ', fmt(new)), "}"))
    can = (score < 5) & ~contradicts & ~np.isnan(new) & (~np.isnan(in_json) | direct)
    return score, why, np.where(can, text, "").astype(STR)


def judge_outcomes(replies: pa.Table, world) -> tuple[np.ndarray, np.ndarray]:
    """``(score [m] int8, rationale [m] str)``: distance of the number to its round's real target."""
    game = world.get_resource(GuessGame) if world is not None else None
    if game is None:
        raise LabelError("rule judge guess_outcome: needs the run's world with its GuessGame history")
    targets = np.array([h["target"] for h in game.history], np.float64)   # one per round played
    tick = replies.column("tick").to_numpy(zero_copy_only=False).astype(np.int64)
    if tick.size and (tick.min() < 0 or tick.max() >= targets.shape[0]):
        raise LabelError(f"rule judge guess_outcome: replies of tick {int(tick.max())}, but the world has "
                         f"{targets.shape[0]} rounds (judge with the run's final world)")
    x, _ = _number(replies.column("completion"))
    d = np.abs(x - targets[tick]) / float(game.max_value)
    far = np.isnan(d) | (x < 0) | (x > game.max_value)
    off = np.strings.add(np.strings.mod("%.1f", np.nan_to_num(100 * d)), "% of the range from the round's target")
    checks = [(far | (d > 0.4), 1, "no number, or more than 40% of the range from the round's target"),
              (d > 0.2, 2, off), (d > 0.1, 3, off), (d > 0.05, 4, off)]     # the first listed wins
    score = np.full(replies.num_rows, 5, np.int8)
    return first_finding(score, np.full(replies.num_rows, "within 5% of the range of the round's target", dtype=STR),
                         checks)


JUDGES = (RuleJudge("guess_number", ("guess",), judge_numbers,
                    help="the number is in range, can win, is in the asked format and agrees with its reasoning; "
                         "rewrites it one reasoning step lower", revises=True),
          RuleJudge("guess_outcome", ("guess",), judge_outcomes, world=True,
                    help="the number is close to the target its round actually had (from the world, not the rules)"))
