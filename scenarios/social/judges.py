"""Rule judge of the social network: the reply's action, mood and stance are allowed and agree with its text.

Read from the logged prompt (the agent's summary line: posts read, its stance)
and the reply, vectorised with Arrow regex kernels. The tone of a post is a
small word list (:data:`POSITIVE`, :data:`NEGATIVE`): a crude polarity, but
one a reader can check. Scores, worst finding first:

=====  ====================================================================
1      not a reply of the asked form (action, emotion, attitude −1..1)
2      forwards with no post read; posts an empty text; a post whose tone
       contradicts the stated attitude (attitude ≥ 0.3 with a negative
       tone, or ≤ −0.3 with a positive one)
3      the stance swings by more than 1 with nothing read
5      none of the above
=====  ====================================================================
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from socius.correct.judges import RuleJudge, contains, extract_number, first_finding
from socius.ecs import STR
from socius.llm import Choice, JsonReply, Number, Text

from .prompts import ACTIONS, EMOTIONS

POSITIVE = r"\b(good|great|glad|happy|support|agree|right|welcome|love|finally|safe|hope|honestly good)\b"
NEGATIVE = r"\b(wrong|bad|outrageous|terrible|against|stop|angry|hate|dangerous|scandal|shame|worried|worry|awful)\b"
REPLY = JsonReply(action=Choice(*ACTIONS), emotion=Choice(*EMOTIONS), attitude=Number(-1, 1), text=Text())


def judge_actions(replies: pa.Table, world=None) -> tuple[np.ndarray, np.ndarray]:
    """``(score [m] int8, rationale [m] str)`` for ``social`` replies (see the module docstring)."""
    prompt, reply = replies.column("prompt"), replies.column("completion")
    ok, cols = REPLY.parse(reply)
    n_posts = extract_number(prompt, r"(?s).*\nSummary: (?P<v>\d+) new posts")
    stance = extract_number(prompt, r"(?s).*Your stance: (?P<v>[-+]?\d+(?:\.\d+)?)\.")
    text = np.asarray(cols["text"], dtype=STR)
    tone = contains(text, POSITIVE).astype(np.int8) - contains(text, NEGATIVE).astype(np.int8)
    att = cols["attitude"]
    action = np.asarray(cols["action"], dtype=STR)
    checks = [
        (~ok, 1, "not an action, emotion and attitude of the asked form"),
        (ok & (action == "forward") & (np.nan_to_num(n_posts) == 0), 2, "forwards although it read no post"),
        (ok & (action == "post") & (np.strings.str_len(np.strings.strip(text)) == 0), 2, "posts an empty text"),
        (ok & (action == "post") & (((att >= 0.3) & (tone < 0)) | ((att <= -0.3) & (tone > 0))), 2,
         "the post's tone contradicts the stated attitude"),
        (ok & (np.nan_to_num(n_posts) == 0) & (np.abs(att - np.nan_to_num(stance, nan=att)) > 1.0), 3,
         "the stance swings with nothing read"),
    ]
    score = np.full(replies.num_rows, 5, np.int8)
    why = np.full(replies.num_rows, "allowed and consistent", dtype=STR)
    return first_finding(score, why, checks)


JUDGES = (RuleJudge("social_action", ("social",), judge_actions,
                    help="action, emotion and attitude are allowed and agree with the post's tone and what was read"),)
