"""Rule judges of the group discussion: polled stances fit the agent, messages fit its view and its room.

Read from the logged prompts and replies, vectorised with Arrow kernels.

``discussion_stance`` (``poll_first``, ``poll_after``): the first poll's
stance should match the declared leaning (``strongly opposed`` → 1 …
``strongly in favour`` → 5): off by 0 → 5, 1 → 4, 2 → 2, more → 1; after a
discussion a stance more than 2 levels from the one before → 2. No stance
1..5 → 1.

``discussion_message`` (``speak*``): 1 when the reply holds no message; 2
when it mentions ``@Name`` who is not another participant of the room, or its
tone contradicts the agent's view (a view of 4–5 and only disagreeing words,
or 1–2 and only agreeing ones); else 5.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.correct.judges import RuleJudge, contains, extract, extract_number, first_finding
from socius.ecs import STR
from socius.llm import JsonReply, Text

from .mock import LEANINGS

AGREE = r"\b(agree|support|in favour|in favor|benefits?|overdue|worked well|better off)\b"
DISAGREE = r"\b(disagree|oppose|against|costs|hurt|failed|worry|worries|thin|not convinced|(?:don't|do not) agree)\b"


def judge_stances(replies: pa.Table, world=None) -> tuple[np.ndarray, np.ndarray]:
    """``(score, rationale)`` for the polls (see the module docstring)."""
    prompt, reply = replies.column("prompt"), replies.column("completion")
    stance = extract_number(reply, r'"stance"\s*:\s*(?P<v>\d+)')
    leaning = extract(prompt, r"on this topic you are (?P<v>[^.\n]+)\.")
    level = np.asarray(pc.index_in(pa.array(leaning.astype(object), pa.large_string()),
                                   value_set=pa.array(list(LEANINGS))).fill_null(-1).to_numpy(), np.int64) + 1
    before = extract_number(prompt, r"Your view before the discussion: (?P<v>\d+) of 5")
    first = np.isnan(before) & (level > 0)
    gap = np.abs(stance - level)
    bad = np.isnan(stance) | (stance < 1) | (stance > 5)
    score = np.full(replies.num_rows, 5, np.int8)
    why = np.full(replies.num_rows, "fits the agent", dtype=STR)
    return first_finding(score, why, [
        (bad, 1, "no stance 1..5"),
        (~bad & first & (gap >= 3), 1, "far from the declared leaning"),
        (~bad & first & (gap == 2), 2, "two levels from the declared leaning"),
        (~bad & ~np.isnan(before) & (np.abs(stance - before) > 2), 2, "jumps more than 2 levels in one discussion"),
        (~bad & first & (gap == 1), 4, "one level from the declared leaning"),
    ])


def judge_messages(replies: pa.Table, world=None) -> tuple[np.ndarray, np.ndarray]:
    """``(score, rationale)`` for the turns (see the module docstring)."""
    prompt, reply = replies.column("prompt"), replies.column("completion")
    ok, cols = JsonReply(message=Text()).parse(reply)
    msg = np.asarray(cols["message"], dtype=STR)
    ok &= np.strings.str_len(np.strings.strip(msg)) > 0
    me = extract(prompt, r"\nYou are (?P<v>[^,\n]+), ")
    members = extract(prompt, r"Participants: (?P<v>[^\n]*)")
    who = extract(msg, r"@(?P<v>[A-Za-z][\w'-]*)")
    known = np.strings.find(np.strings.add(np.strings.add(", ", members), ","),
                            np.strings.add(np.strings.add(", ", who), ",")) >= 0
    stray = (who != "") & (~known | (who == me))
    view = extract_number(prompt, r"Your view on the statement: (?P<v>\d) of 5")
    pro, con = contains(msg, AGREE), contains(msg, DISAGREE)
    clash = ((view >= 4) & con & ~pro) | ((view <= 2) & pro & ~con)
    score = np.full(replies.num_rows, 5, np.int8)
    why = np.full(replies.num_rows, "fits the view and the room", dtype=STR)
    return first_finding(score, why, [
        (~ok, 1, "no message"),
        (ok & stray, 2, "mentions someone who is not another participant"),
        (ok & clash, 2, "the message's tone contradicts the agent's view"),
    ])


JUDGES = (RuleJudge("discussion_stance", ("poll_first", "poll_after"), judge_stances,
                    help="polled stances fit the declared leaning and do not jump"),
          RuleJudge("discussion_message", ("speak*",), judge_messages,
                    help="messages mention only other participants and fit the speaker's view"))
