"""The mock engine's policy for the recommender: plausible users without an LLM.

It reads the prompt as a model would (vectorised string kernels over the
batch): the page lines of the visitor (movie IDs and the others' average
rating shown), the wording of their conformity (four levels, read back as 0,
0.4, 0.75 or 1 — so an intervention on ``Traits.conformity`` reaches it), or the
one movie of a rating prompt. The visitor's genre taste it recomputes from
the entity ID with the scenario's own function (:func:`.users.tastes`).

Own opinion of item ``i`` by user ``u``::

    own = quality_i + 0.9 · clip(log2(match_ui + 0.05), -2.5, 1.5) + noise,  noise ~ N(0, 0.6)

``quality`` is the item's shrunk mean rating in the catalogue, ``match`` the
user's taste over the item's genres relative to an even taste (1 = average).
The user watches the line with the best ``own`` expectation (plus a choice
noise) when it reaches 3.5, else nothing; the posted rating moves from the
own opinion toward the shown average by the conformity trait; both are
snapped to the 0.5 grid. Good ratings are shared (≥ 4.5: post, ≥ 4.0: chat,
each with a probability). Every draw is keyed by (seed, entity, tick).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import STR
from socius.ecs.rng import EntityRng
from socius.llm import RequestBatch

from .data import Catalogue
from .prompts import BROWSE, RATE, snap
from .users import CONFORMITY_LEVELS, tastes

WATCH_THRESHOLD = 3.5
SLOT = r"^(?P<slot>\d+)\. \[id (?P<id>\d+)\](?:.* others rate it (?P<avg>\d+(?:\.\d+)?))?"


def expected_opinion(taste: np.ndarray, genres: np.ndarray, quality: np.ndarray, present: int) -> np.ndarray:
    """``[..]`` expected own rating of items (``genres [.., 20]``, ``quality [..]``) for users' ``taste [.., 20]``;
    ``present``: how many genres the catalogue has (an even taste then matches every item with 1)."""
    g = genres.astype(np.float64)
    share = g / np.maximum(g.sum(axis=-1, keepdims=True), 1.0)
    match = (taste * share).sum(axis=-1) * present
    return quality + 0.9 * np.clip(np.log2(match + 0.05), -2.5, 1.5)


def _prefix(template: str) -> str:
    """The fixed text a template's prompts start with: everything before its first field, ``{name}``."""
    return template.split("{name}", 1)[0].replace("{{", "{").replace("}}", "}")


BROWSE_PREFIX, RATE_PREFIX = _prefix(BROWSE), _prefix(RATE)


def split_prompts(prompts: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """``(kind [r] int8, visitor [r])`` of Arrow prompts: 1 for browse prompts, 2 for rate prompts, 0 for
    others (extraction); the visitor text is what follows the fixed instructions and examples — a slice
    at a known offset, no search (other prompts come back whole)."""
    browse = pc.starts_with(prompts, BROWSE_PREFIX[:80])  # the two differ within their first words
    rate = pc.starts_with(prompts, RATE_PREFIX[:80])
    visitor = pc.if_else(browse, pc.utf8_slice_codeunits(prompts, len(BROWSE_PREFIX)),
                         pc.if_else(rate, pc.utf8_slice_codeunits(prompts, len(RATE_PREFIX)), prompts))
    b, r = (np.asarray(x.to_numpy(zero_copy_only=False), bool) for x in (browse, rate))
    return np.where(b, 1, np.where(r, 2, 0)).astype(np.int8), visitor


def read_conformity(visitor: pa.Array) -> np.ndarray:
    """``[r]`` the conformity a visitor text's wording states (:data:`.users.CONFORMITY_LEVELS`; 0 when none)."""
    head = pc.utf8_slice_codeunits(visitor, 0, 400)  # the wording sits in the first line
    out = np.zeros(len(visitor))
    for _, words, value in CONFORMITY_LEVELS:  # four wordings, not a loop over requests
        hit = np.asarray(pc.match_substring(head, words).to_numpy(zero_copy_only=False), bool)
        out = np.where(hit, value, out)
    return out


def _to_float(arr) -> np.ndarray:
    arr = pc.if_else(pc.equal(arr, ""), None, arr)
    return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)


def parse_pages(visitor: pa.Array, cat: Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """``(items [r, S] int64 (-1: none), shown average [r, S] float64 (NaN: none))`` from the visitor texts
    (:func:`split_prompts`) of browse prompts."""
    r = len(visitor)
    lines = pc.split_pattern(visitor, "\n")
    flat = pc.list_flatten(lines)
    parent = pc.list_parent_indices(lines).to_numpy()
    m = pc.extract_regex(flat, pattern=SLOT)
    ok = m.is_valid().to_numpy(zero_copy_only=False)
    if not ok.any():
        return np.full((r, 1), -1, np.int64), np.full((r, 1), np.nan)
    m = m.filter(pa.array(ok))
    parent = parent[ok]
    slot = _to_float(m.field("slot")).astype(np.int64) - 1
    mid = _to_float(m.field("id")).astype(np.int64)
    avg = _to_float(m.field("avg"))
    size = int(slot.max()) + 1
    order = np.argsort(cat.movie_id, kind="stable")
    pos = np.minimum(np.searchsorted(cat.movie_id[order], mid), order.shape[0] - 1)
    item = np.where(cat.movie_id[order][pos] == mid, order[pos], -1)
    items = np.full((r, size), -1, np.int64)
    shown = np.full((r, size), np.nan)
    items[parent, slot] = item
    shown[parent, slot] = avg
    return items, shown


def recommender_policy(cfg, cat: Catalogue):
    """A mock policy for the browse and rate decisions of a run with config ``cfg`` over ``cat``."""
    quality = cat.quality()
    present = max(int(cat.genres.any(axis=0).sum()), 1)

    def policy(batch: RequestBatch, seed: int) -> np.ndarray:
        ids = batch.entities
        c = ids.shape[0]
        req = batch.prompts_arrow if hasattr(batch, "prompts_arrow") else pa.array(batch.prompts, pa.large_string())
        kind_r, visitor = split_prompts(req)
        is_browse = kind_r == 1
        kind = np.repeat(kind_r, batch.n)
        browse = kind == 1
        taste = tastes(cfg.taste, cfg.taste_concentration, cat, ids, seed).astype(np.float64)
        conformity = np.repeat(read_conformity(visitor), batch.n)
        rng = EntityRng(seed, "mock:recommender", batch.tick)
        out = np.full(c, '{"watch": 0, "own": 0, "rating": 0, "share": "none"}', dtype=STR)
        # browse: pick a line, rate it, maybe share
        items_r, shown_r = parse_pages(visitor.filter(pa.array(is_browse)), cat)
        items = np.full((c, items_r.shape[1]), -1, np.int64)
        shown = np.full((c, items_r.shape[1]), np.nan)
        items[browse] = np.repeat(items_r, batch.n[is_browse], axis=0)
        shown[browse] = np.repeat(shown_r, batch.n[is_browse], axis=0)
        size = items.shape[1]
        noise = rng.normal(ids, 0.0, 1.0, size=2 * size)
        valid = items >= 0
        safe = np.where(valid, items, 0)
        expect = expected_opinion(taste[:, None, :], cat.genres[safe], quality[safe], present)
        pick_score = np.where(valid, expect + 0.4 * noise[:, :size], -np.inf)
        best = np.argmax(pick_score, axis=1)
        rows = np.arange(c)
        watch = np.isfinite(pick_score[rows, best]) & (pick_score[rows, best] >= WATCH_THRESHOLD)
        own = snap(expect[rows, best] + 0.6 * noise[:, size:2 * size][rows, best])
        avg = shown[rows, best]
        rating = np.where(np.isnan(avg), own, snap(own + conformity * (np.nan_to_num(avg) - own)))
        u = EntityRng(seed, "mock:share", batch.tick).random(ids)
        share = np.where((rating >= 4.5) & (u < 0.5), "post",
                         np.where((rating >= 4.0) & (u < 0.45), "chat", "none")).astype(STR)
        share = np.where(watch, share, "none").astype(STR)
        parts = ['{"watch": ', np.where(watch, best + 1, 0).astype(STR), ', "own": ',
                 np.strings.mod("%.1f", np.where(watch, own, 0.0)).astype(STR), ', "rating": ',
                 np.strings.mod("%.1f", np.where(watch, rating, 0.0)).astype(STR), ', "share": "', share, '"}']
        reply = parts[0]
        for piece in parts[1:]:
            reply = np.strings.add(reply, piece)
        out = np.where(browse, reply, out).astype(STR)
        # rate: the one movie of the prompt
        rate = kind == 2
        if rate.any():
            found = pc.extract_regex(visitor, pattern=r"Watched: \[id (?P<id>\d+)\]")
            mid = _to_float(pc.if_else(found.is_valid(), found.field("id"), "-1"))
            mid = np.repeat(np.nan_to_num(mid, nan=-1).astype(np.int64), batch.n)
            order = np.argsort(cat.movie_id, kind="stable")
            pos = np.minimum(np.searchsorted(cat.movie_id[order], mid), order.shape[0] - 1)
            item = order[pos]
            known = cat.movie_id[item] == mid
            r = snap(expected_opinion(taste, cat.genres[item], quality[item], present)
                     + 0.6 * EntityRng(seed, "mock:rate", batch.tick).normal(ids))
            text = np.strings.add(np.strings.add('{"rating": ', np.strings.mod("%.1f", r).astype(STR)), "}")
            out = np.where(rate & known, text, out).astype(STR)
        return out

    return policy
