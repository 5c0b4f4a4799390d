"""Prompts and reply schemas of the recommender: browse a page (watch, rate, share) and rate one movie.

Both are few-shot completion prompts (they work with base models such as the
local engine's Gemma 3 270M) with a JSON reply schema, so engines with
constrained decoding produce a parseable reply. Text is rendered for every
acting user at once (:class:`~socius.llm.templates.Template`); page lines
are built per item once per tick and gathered per user.

Browse reply: ``{"watch": k, "own": x, "rating": y, "share": "none"|"chat"|"post"}``
— ``k`` is the page line (0: watch nothing), ``own`` the user's own opinion,
``rating`` the rating they post after seeing the others' average (the gap
between the two is the conformity effect), both 0.5–5.0 in 0.5 steps (0 when
nothing was watched). Rate reply (the fluctuation experiment): ``{"rating": y}``.
"""
from __future__ import annotations

import numpy as np

from socius.ecs import STR
from socius.llm import Choice, Decision, JsonReply, Number, Sampling, Template

from .data import Catalogue

SHARE = ("none", "chat", "post")

INTRO = ("A movie website shows each visitor a page of recommended movies. A visitor watches at most one of them "
         "now, or none, and rates it from 0.5 to 5.0 stars in steps of 0.5. The reply gives the line number watched "
         '("watch", 0 for none), the visitor\'s own opinion of it ("own"), the rating they post after seeing what '
         'others think ("rating"; 0 and 0 when nothing is watched), and whether they tell one friend ("chat"), all '
         'their friends ("post") or nobody ("none").\n\n')
BROWSE_EXAMPLE = (
    "Visitor: Sam, a 51-year-old male driver who likes Action, Thriller and Crime and dislikes Romance. "
    "Trusts their own taste and ignores what others think.\n"
    "Recommended:\n"
    "1. [id 900023] The Paper Promise (2009) - Romance|Drama - others rate it 3.9 (88 ratings)\n"
    "2. [id 900031] The Quiet Garden (2015) - Romance - others rate it 3.6 (25 ratings)\n"
    'Reply: {{"watch": 0, "own": 0, "rating": 0, "share": "none"}}\n\n'
    "Visitor: Dana, a 34-year-old female nurse who likes Drama, Romance and Comedy and dislikes Horror. "
    "Is swayed a little by other people's opinions.\n"
    "Recommended:\n"
    "1. [id 900005] The Dark Storm (2003) - Horror - others rate it 2.9 (40 ratings)\n"
    "2. [id 900017] The Golden Road (1994) - Drama|Romance - others rate it 4.1 (212 ratings)\n"
    'Reply: {{"watch": 2, "own": 4.5, "rating": 4.0, "share": "post"}}\n\n')
BROWSE = (
    INTRO + "Examples:\n" + BROWSE_EXAMPLE +
    "Visitor: {name}, a {age}-year-old {gender} {occupation} who likes {likes} and dislikes {dislikes}. "
    "{conformity}\n{memories}"
    "Recommended:\n{page}\n"
    "Reply: ")
RATE = (
    "A movie website asks visitors to rate movies from 0.5 to 5.0 stars in steps of 0.5.\n\n"
    "Examples:\nVisitor: Dana, a 34-year-old female nurse who likes Drama, Romance and Comedy and dislikes Horror.\n"
    "Watched: [id 900017] The Golden Road (1994) - Drama|Romance\n"
    'Reply: {{"rating": 4.5}}\n\n'
    "Visitor: Sam, a 51-year-old male driver who likes Action, Thriller and Crime and dislikes Romance.\n"
    "Watched: [id 900023] The Paper Promise (2009) - Romance|Drama\n"
    'Reply: {{"rating": 2.0}}\n\n'
    "Visitor: {name}, a {age}-year-old {gender} {occupation} who likes {likes} and dislikes {dislikes}.\n"
    "Watched: {movie}\n"
    "Reply: ")

BROWSE_REPLY = JsonReply(watch=Number(0, 50, integer=True), own=Number(0, 5), rating=Number(0, 5),
                         share=Choice(*SHARE))
RATE_REPLY = JsonReply(rating=Number(0.5, 5))


def browse_decision(temperature: float = 0.7, max_tokens: int = 48) -> Decision:
    return Decision("browse", Template(BROWSE, untrusted=()), BROWSE_REPLY,
                    fallback={"watch": 0.0, "own": 0.0, "rating": 0.0, "share": "none"},
                    sampling=Sampling(temperature=temperature, max_tokens=max_tokens, stop=("\n",)))


def rate_decision(temperature: float = 0.7, max_tokens: int = 16) -> Decision:
    return Decision("rate", Template(RATE), RATE_REPLY, fallback={"rating": np.nan},
                    sampling=Sampling(temperature=temperature, max_tokens=max_tokens, stop=("\n",)))


def snap(x: np.ndarray) -> np.ndarray:
    """Ratings onto the 0.5..5.0 grid (round half up to the nearest 0.5, clip)."""
    return np.clip(np.floor(np.asarray(x, np.float64) * 2 + 0.5) / 2, 0.5, 5.0)


def item_labels(cat: Catalogue) -> np.ndarray:
    """``[M]``: ``[id 17] Title (1994) - Drama|Romance``."""
    head = np.strings.add(np.strings.add("[id ", cat.movie_id.astype(STR)), "] ")
    return np.strings.add(np.strings.add(np.strings.add(head, cat.title), " - "), cat.genre_names()).astype(STR)


def item_lines(labels: np.ndarray, counts: np.ndarray, half_sums: np.ndarray, show_average: bool) -> np.ndarray:
    """``[M]`` page text of each item: its label and, when shown, the others' average rating."""
    if not show_average:
        return labels
    avg = np.strings.mod("%.1f", half_sums / 2.0 / np.maximum(counts, 1)).astype(STR)
    tail = np.where(counts > 0, np.strings.add(np.strings.add(np.strings.add(np.strings.add(
        " - others rate it ", avg), " ("), counts.astype(STR)), " ratings)"), " - no ratings yet").astype(STR)
    return np.strings.add(labels, tail).astype(STR)


def render_pages(pages: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``[n]`` page texts from ``pages [n, N]`` item indices (``-1``: empty slot) and per-item ``lines``."""
    n, size = pages.shape
    out = np.full(n, "", dtype=STR)
    for j in range(size):  # page slots, not users
        ok = pages[:, j] >= 0
        line = np.strings.add(f"{j + 1}. ", lines[np.where(ok, pages[:, j], 0)])
        sep = "\n" if j else ""
        out = np.where(ok, np.strings.add(np.strings.add(out, sep), line), out).astype(STR)
    return out
