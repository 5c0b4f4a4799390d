"""Rule judge of the guess game: the number is in range, can win, and agrees with the stated reasoning.

Everything is read from the logged prompt (the rules, the range, the ratio,
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
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from socius.ecs import STR
from socius.correct.judges import RuleJudge, contains, extract, extract_number, first_finding

_NUM = r"-?\d+(?:\.\d+)?"


def _target_bound(prompt) -> np.ndarray:
    """``[m]`` the largest target the rules allow: offset + p · max_value (NaN in the group game)."""
    top = extract_number(prompt, rf"between 0 and (?P<v>{_NUM}), inclusive")
    rule = r"closest to (?:\d+(?:\.\d+)? plus )?"
    num = extract_number(prompt, rule + rf"(?P<v>{_NUM})(?:/\d+)? of the average of all reported")
    den = extract_number(prompt, rule + rf"{_NUM}/(?P<v>\d+) of the average of all reported")
    offset = np.nan_to_num(extract_number(prompt, rf"closest to (?P<v>{_NUM}) plus"))
    p = num / np.where(np.isnan(den), 1.0, den)
    return offset + p * top


def judge_numbers(replies: pa.Table, world=None) -> tuple[np.ndarray, np.ndarray]:
    """``(score [m] int8, rationale [m] str)`` for guess replies (see the module docstring)."""
    prompt, reply = replies.column("prompt"), replies.column("completion")
    top = extract_number(prompt, rf"between 0 and (?P<v>{_NUM}), inclusive")
    top = np.where(np.isnan(top), 100.0, top)
    in_json = extract_number(reply, rf'"number"\s*:\s*(?P<v>{_NUM})')
    prose = extract_number(reply, rf"(?s).*?(?P<v>{_NUM})\D*$")          # the last number written
    x = np.where(np.isnan(in_json), prose, in_json)
    bound = _target_bound(prompt)
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
    return first_finding(score, why, checks)


JUDGES = (RuleJudge("guess_number", ("guess",), judge_numbers,
                    help="the number is in range, can win, is in the asked format and agrees with its reasoning"),)
