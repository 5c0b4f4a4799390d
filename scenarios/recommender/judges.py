"""Rule judge of the recommender: a rating agrees with the user's declared genre tastes.

The prompt declares what the user likes (three genres) and dislikes (one),
how much others sway them, and the page of movies with their genres; the
reply names the line watched and the user's own opinion and posted rating.
Read with Arrow regex kernels; genres are matched one genre at a time
(twenty, never a loop over rows). Scores, worst finding first:

=====  ====================================================================
1      not a reply of the asked form, or a line that is not on the page
2      watched nothing but gave a rating, or watched and gave none; rated a
       movie of only disliked genres 4 or more, or one of only liked genres
       2 or less
3      chose a movie of a disliked genre (and none it likes); posted a rating
       more than half a star from its own opinion while it "ignores what
       others think"
5      none of the above
=====  ====================================================================

``rate`` replies (the fluctuation experiment) get the same taste check on
their rating.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.correct.judges import RuleJudge, contains, extract, first_finding
from socius.ecs import STR

from .data import GENRES
from .prompts import BROWSE_REPLY, RATE_REPLY

IGNORES = "Trusts their own taste and ignores what others think."


def _line(page: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``[m]`` line ``k`` (1-based) of each page text ("" when there is none)."""
    lists = pc.split_pattern(pa.array(page.astype(object), pa.large_string()), pattern="\n")
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    offsets = lists.offsets.to_numpy()[:-1]
    on = (k >= 1) & (k <= lengths)
    flat = np.asarray(lists.flatten().to_numpy(zero_copy_only=False)).astype(STR)
    idx = np.where(on, offsets + np.maximum(k, 1) - 1, 0)
    return np.where(on, flat[idx] if flat.shape[0] else "", "").astype(STR)


def _taste(movie: np.ndarray, likes: np.ndarray, dislikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[m] bool`` pairs: the movie has a liked genre; it has the disliked one."""
    genres = extract(movie, r"\(\d{4}\) - (?P<v>[^ ]+)")
    liked = np.zeros(movie.shape[0], dtype=bool)
    disliked = np.zeros(movie.shape[0], dtype=bool)
    for g in GENRES:  # twenty genres, not rows
        name = re.escape(g)
        pat = rf"(^|\|){name}(\||$)"
        has = contains(genres, pat, ignore_case=False)
        liked |= has & contains(likes, rf"(^|, | and ){name}(,| and |$)", ignore_case=False)
        disliked |= has & contains(dislikes, rf"(^|, | and ){name}(,| and |$)", ignore_case=False)
    return liked, disliked


def judge_ratings(replies: pa.Table, world=None) -> tuple[np.ndarray, np.ndarray]:
    """``(score [m] int8, rationale [m] str)`` for ``browse`` and ``rate`` replies (see the module docstring)."""
    prompt, reply = replies.column("prompt"), replies.column("completion")
    m = replies.num_rows
    browse = np.asarray(pc.equal(replies.column("decision"), "browse").to_numpy(zero_copy_only=False), dtype=bool)
    ok_b, b = BROWSE_REPLY.parse(reply)
    ok_r, r = RATE_REPLY.parse(reply)
    visitor = extract(prompt, r"(?s).*\nVisitor: (?P<v>[^\n]*)")
    likes = extract(visitor, r" who likes (?P<v>.*?) and dislikes ")
    dislikes = extract(visitor, r" and dislikes (?P<v>[^.]*)\.")
    page = extract(prompt, r"(?s).*\nRecommended:\n(?P<v>.*?)\nReply: $")
    watch = np.nan_to_num(b["watch"]).astype(np.int64)
    size = np.asarray(pc.list_value_length(pc.split_pattern(pa.array(page.astype(object), pa.large_string()),
                                                            pattern="\n")).to_numpy(zero_copy_only=False))
    movie = np.where(browse, _line(page, watch), extract(prompt, r"(?s).*\nWatched: (?P<v>[^\n]*)"))
    liked, disliked = _taste(movie, likes, dislikes)
    own = np.where(browse, b["own"], r["rating"])
    rating = np.where(browse, b["rating"], r["rating"])
    ok = np.where(browse, ok_b, ok_r)
    watched = ~browse | (watch >= 1)
    checks = [
        (~ok, 1, "not a reply of the asked form"),
        (ok & browse & ((watch < 0) | (watch > size)), 1, "watches a line that is not on the page"),
        (ok & browse & (watch == 0) & ((own > 0) | (rating > 0)), 2, "rates a movie it did not watch"),
        (ok & watched & (rating < 0.5), 2, "watched but gave no rating"),
        (ok & watched & disliked & ~liked & (own >= 4), 2, "rates a movie of a disliked genre highly"),
        (ok & watched & liked & ~disliked & (own <= 2) & (own >= 0.5), 2, "rates a movie of liked genres low"),
        (ok & browse & (watch >= 1) & disliked & ~liked, 3, "chose a movie of a disliked genre"),
        (ok & browse & (watch >= 1) & contains(visitor, IGNORES.replace(".", r"\."))
         & (np.abs(rating - own) > 0.5), 3, "follows others although it ignores what others think"),
    ]
    score = np.full(m, 5, np.int8)
    why = np.full(m, "agrees with the declared tastes", dtype=STR)
    return first_finding(score, why, checks)


JUDGES = (RuleJudge("recommender_taste", ("browse", "rate"), judge_ratings,
                    help="the watched movie and its rating agree with the user's declared genre tastes"),)
