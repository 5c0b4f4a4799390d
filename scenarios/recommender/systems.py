"""The recommender's tick: refit the model, fill the pages, browse (one LLM call), record.

In schedule order (``build`` adds them after the environment's
``apply_interventions``; its ``notify_watchers`` runs in ``post``):

1. :func:`refit_model` (pre): ``mf`` only, every ``refit_every`` ticks — ALS
   on all ratings so far, gathered from every rank in global ID order, so
   every rank fits the same model.
2. :func:`recommend_items` (pre): each user browses with probability
   ``activity`` (a draw keyed by seed, tick and entity) and gets a page of
   ``page_size`` unwatched movies from the chosen recommender.
3. :func:`browse_page` (update): friends' mentions of last tick go into
   memory; every browsing user then asks ONE batched LLM call
   (:func:`socius.llm.decide`) whether to watch a line, how to rate it and
   whom to tell; the watch goes into the history and memory, chats and posts
   out as :class:`~.components.Mention` messages.
4. :func:`record_tick` (post): the shared per-item counts and one metrics
   row, by MPI-exact reductions (the same on any number of ranks).

Prompts are assembled as string columns for all browsing users at once;
nothing loops over agents in Python.
"""
from __future__ import annotations

import numpy as np

from socius.components import ModelChoice
from socius.components.memory import LongTermMemory, ShortTermMemory
from socius.components.profile import Profile
from socius.ecs import STR, system
from socius.ecs.ragged import RaggedArray
from socius.llm import LLM, decide
from socius.mpi import bincount, exact_mean, gather_ordered, int_sum, world_ranks
from socius.systems import MemoryEmbedder, MemoryParams, join_lines, memorize, model_choice, recent, retrieve

from . import prompts, recsys
from .components import Choice, Friends, History, Mention, Page, RecSetup, RecState, Taste, Traits
from .users import conformity_phrase, taste_phrases


def _dense(r: RaggedArray, width: int) -> np.ndarray:
    """``[n, width] int64`` from a ragged array (``-1`` padding)."""
    out = np.full((len(r), width), -1, np.int64)
    pos = np.arange(r.values.shape[0]) - np.repeat(r.offsets[:-1], r.lengths)
    keep = pos < width
    out[r.row_ids()[keep], pos[keep]] = r.values[keep]
    return out


def _ragged(pages: np.ndarray, rows: np.ndarray, n: int) -> RaggedArray:
    """Ragged ``n`` rows: ``pages [a, N]`` (``-1`` dropped) in ``rows``, empty elsewhere."""
    lengths = np.zeros(n, np.int64)
    lengths[rows] = (pages >= 0).sum(axis=1)
    return RaggedArray.from_lengths(lengths, pages[pages >= 0].astype(np.int32))


@system(phase="pre", reads=(History,), resources=(RecState, RecSetup))
def refit_model(ctx):
    """mf: every ``refit_every`` ticks, fit ALS on all ratings so far, gathered in global ID order."""
    setup = ctx.resource(RecSetup)
    cfg = setup.cfg
    if cfg.recommender != "mf" or ctx.tick % cfg.refit_every:
        return
    v = ctx.query(History)
    ranks = world_ranks(ctx)
    ids, items = gather_ordered(ranks, v.ids, v[History].items)
    _, ratings = gather_ordered(ranks, v.ids, v[History].ratings)
    if items.values.shape[0] == 0:
        return
    fit = recsys.fit_als_jax if cfg.mf_backend == "jax" else recsys.fit_als
    st = ctx.resource(RecState)
    st.p, st.q, st.mu = fit(np.repeat(ids, items.lengths), items.values, ratings.values, cfg.agents,
                            setup.cat.n_items, k=cfg.factors, reg=cfg.reg, iters=cfg.als_iters, seed=ctx.seed)
    st.fitted_at = ctx.tick


@system(phase="pre", reads=(Traits, Taste, History), writes=(Page,), resources=(RecState, RecSetup))
def recommend_items(ctx):
    """Active users (a draw against their activity) get a page from the chosen recommender; others none."""
    setup, st = ctx.resource(RecSetup), ctx.resource(RecState)
    cfg = setup.cfg
    v = ctx.query(Page, Traits, Taste, History)
    rows = np.flatnonzero(ctx.rng("browse").random(v.ids) < v[Traits].activity)
    hist = v[History].items.take(rows)
    if cfg.recommender == "content":
        pages = recsys.content_pages(setup.index, setup.item_vecs, setup.genre_vecs, v[Taste].genres[rows], hist,
                                     v[History].ratings.take(rows), cfg.page_size, cfg.liked)
    elif cfg.recommender == "mf" and st.fitted_at >= 0:
        pages = recsys.mf_pages(st.p[v.ids[rows]], st.q, st.mu, st.counts, hist, cfg.page_size)
    else:  # popularity, and mf before its first fit
        pages = recsys.popularity_pages(st.counts, hist, cfg.page_size)
    v.set(Page, items=_ragged(pages, rows, len(v)))  # every row: last tick's pages go


def _friend_notes(batch, ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(targets [m], texts [m])``: one "Friend X posted about …" memory per message addressed to one of ``ids``."""
    if len(batch) == 0:
        return np.zeros(0, np.int64), np.zeros(0, dtype=STR)
    m = np.flatnonzero(np.isin(batch.target, ids))
    verb = np.where(batch.via[m] == 2, " posted about ", " told them about ").astype(STR)
    text = np.strings.add(np.strings.add(np.strings.add(np.strings.add(np.strings.add(
        "Friend ", batch.name[m]), verb), labels[batch.item[m]]), ", rating it "),
        np.strings.mod("%.1f", batch.rating[m].astype(np.float64)).astype(STR))
    return batch.target[m], np.strings.add(text, ".").astype(STR)


def _memories(ctx, cfg, ids: np.ndarray, page_text: np.ndarray) -> np.ndarray:
    """``[a]`` StringDType: the prompt's memory block per browsing user ("" when none)."""
    if cfg.long_memory and cfg.memories:  # the memories most relevant to this page
        memories = retrieve(ctx, ids, page_text, k=cfg.memories).joined(empty="")
        header = "Remembers, most relevant first:\n"
    else:
        memories = join_lines(recent(ctx, ids, cfg.memories), empty="")
        header = "Remembers, newest first:\n"
    return np.where(np.strings.str_len(memories) > 0, np.strings.add(np.strings.add(header, memories), "\n"),
                    "").astype(STR)


def _send_mentions(ctx, v, rows: np.ndarray, item: np.ndarray, rating: np.ndarray, share: np.ndarray) -> None:
    """A chat goes to one friend (drawn by entity), a post to every friend; ``rows`` are the browsing rows."""
    ids = v.ids[rows]
    names = v[Profile].name[rows]
    friends = v[Friends].ids.take(rows)
    fl = friends.lengths
    chat = (share == 1) & (fl > 0)
    if chat.any():
        pick = ctx.rng("chat").integers(ids[chat], 0, fl[chat])
        ctx.send(Mention, sender=ids[chat], target=friends.values[friends.offsets[:-1][chat] + pick],
                 item=item[chat].astype(np.int32), rating=rating[chat].astype(np.float32),
                 name=names[chat], via=np.int8(1))
    post = (share == 2) & (fl > 0)
    if post.any():
        sub = friends.take(np.flatnonzero(post))
        rep = sub.lengths
        ctx.send(Mention, sender=np.repeat(ids[post], rep), target=sub.values,
                 item=np.repeat(item[post], rep).astype(np.int32),
                 rating=np.repeat(rating[post], rep).astype(np.float32), name=np.repeat(names[post], rep),
                 via=np.int8(2))


@system(phase="update", reads=(Profile, Traits, Taste, Page, Friends, ModelChoice),
        writes=(History, Choice, ShortTermMemory, LongTermMemory),
        resources=(RecState, RecSetup, LLM, MemoryEmbedder, MemoryParams), sends=(Mention,), receives=(Mention,))
def browse_page(ctx):
    """Every user with a page asks its LLM once (one batched call): watch + rate, or skip; share."""
    setup, st = ctx.resource(RecSetup), ctx.resource(RecState)
    cfg = setup.cfg
    v = ctx.query(Choice, History, Profile, Traits, Taste, Page, Friends)
    n = len(v)
    page = v[Page].items
    rows = np.flatnonzero(page.lengths > 0)
    ids = v.ids[rows]
    dense = _dense(page.take(rows), cfg.page_size)
    lines = prompts.item_lines(setup.labels, st.counts, st.half_sums, cfg.show_average)
    likes, dislikes = taste_phrases(v[Taste].genres[rows])
    heard, notes = _friend_notes(ctx.read(Mention), v.ids, setup.labels)
    long = LongTermMemory if cfg.long_memory else None
    memorize(ctx, heard, notes, 3.0, memory=long)  # what friends said (to all they told), before browsing
    page_text = prompts.render_pages(dense, lines)
    fields = {"name": v[Profile].name[rows], "age": v[Profile].age[rows], "gender": v[Profile].gender[rows],
              "occupation": v[Profile].occupation[rows], "likes": likes, "dislikes": dislikes,
              "conformity": conformity_phrase(v[Traits].conformity[rows]),
              "memories": _memories(ctx, cfg, ids, page_text), "page": page_text}
    models, adapters = model_choice(ctx, ids)
    res = decide(ctx, setup.browse, ids, fields, models=models, adapters=adapters)
    watch = np.nan_to_num(res.values["watch"]).astype(np.int64)
    size = (dense >= 0).sum(axis=1)
    rating = res.values["rating"]
    ok = (watch >= 1) & (watch <= size) & (rating >= 0.5)
    item = np.where(ok, dense[np.arange(rows.shape[0]), np.clip(watch - 1, 0, cfg.page_size - 1)], -1)
    rating = np.where(ok, prompts.snap(rating), 0.0)
    own_raw = res.values["own"]
    own = np.where(ok, np.where(own_raw >= 0.5, prompts.snap(own_raw), rating), 0.0)
    safe = np.maximum(item, 0)
    shown = np.where(ok & cfg.show_average & (st.counts[safe] > 0), st.half_sums[safe] / 2.0 / np.maximum(
        st.counts[safe], 1), np.nan)
    share = np.where(ok, np.select([res.values["share"] == "chat", res.values["share"] == "post"], [1, 2], 0), 0)
    # every row: users who did not browse this tick get the defaults (no choice), not last tick's
    cols = {"item": np.full(n, -1, np.int32), "rating": np.zeros(n, np.float32), "own": np.zeros(n, np.float32),
            "shown": np.full(n, np.nan, np.float32), "share": np.zeros(n, np.int8), "outcome": np.zeros(n, np.int8)}
    for k, val in (("item", item), ("rating", rating), ("own", own), ("shown", shown), ("share", share),
                   ("outcome", res.outcome)):
        cols[k][rows] = val
    v.set(Choice, **cols)
    w, hist = rows[ok], v[History]
    v.set(History, items=hist.items.append(w, item[ok]), ratings=hist.ratings.append(w, rating[ok]),
          own=hist.own.append(w, own[ok]))
    seen = np.strings.add(np.strings.add(np.strings.add("Watched ", setup.cat.title[item[ok]]), " and rated it "),
                          np.strings.mod("%.1f", rating[ok]).astype(STR))
    memorize(ctx, ids[ok], seen, np.clip(2.0 + 2.0 * np.abs(rating[ok] - 3.0), 1.0, 10.0), memory=long)
    _send_mentions(ctx, v, rows, item, rating, share)


def genre_entropy(items: RaggedArray, genres: np.ndarray) -> np.ndarray:
    """``[n] float64`` entropy (bits) of each user's watched genres (an item's genres share one unit); NaN if none.

    ``items``: ragged item indices per user; ``genres``: ``[M, 20] bool`` of the catalogue.
    """
    n = len(items)
    g = genres[items.values.astype(np.int64)].astype(np.float64)
    g /= np.maximum(g.sum(axis=1, keepdims=True), 1.0)
    acc = np.zeros((n, genres.shape[1]))
    np.add.at(acc, items.row_ids(), g)
    tot = acc.sum(axis=1, keepdims=True)
    p = acc / np.maximum(tot, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    return np.where(tot[:, 0] > 0, h, np.nan)


@system(phase="post", reads=(Choice, Page, History), resources=(RecState, RecSetup))
def record_tick(ctx):
    """Update the shared counts (global reductions) and append this tick's metrics row to ``RecState.history``."""
    setup, st = ctx.resource(RecSetup), ctx.resource(RecState)
    ranks = world_ranks(ctx)
    m = setup.cat.n_items
    v = ctx.query(Choice, Page, History)
    c = v[Choice]
    item, rating, own, shown = c.item, c.rating.astype(np.float64), c.own.astype(np.float64), c.shown
    w = item >= 0
    cnt = bincount(ranks, item[w], m)
    half = bincount(ranks, item[w], m, weights=np.round(rating[w] * 2).astype(np.int64))
    st.counts = st.counts + cnt
    st.half_sums = st.half_sums + half
    st.recommended = st.recommended | (bincount(ranks, v[Page].items.values.astype(np.int64), m) > 0)
    st.watched = st.watched | (cnt > 0)
    dist = bincount(ranks, np.round(rating[w] * 2).astype(np.int64) - 1, 10)
    moved = w & ~np.isnan(shown) & (shown != own)
    shift = (rating - own) * np.sign(shown.astype(np.float64) - own)
    ent = genre_entropy(v[History].items, setup.cat.genres)
    active = int_sum(ranks, (v[Page].items.lengths > 0).astype(np.int64))
    watched = int(cnt.sum())
    row = {"tick": ctx.tick, "active": active, "watched": watched, "skipped": active - watched,
           "mean_rating": exact_mean(ranks, rating[w]),
           **{f"r{k * 5:02d}": int(dist[k - 1]) for k in range(1, 11)},
           "coverage_recommended": float(st.recommended.sum() / m), "coverage_watched": float(st.watched.sum() / m),
           "genre_entropy": exact_mean(ranks, ent[~np.isnan(ent)]),
           "conformity": exact_mean(ranks, shift[moved]),
           "conformity_n": int_sum(ranks, moved.astype(np.int64)),
           "chats": int_sum(ranks, (c.share == 1).astype(np.int64)),
           "posts": int_sum(ranks, (c.share == 2).astype(np.int64)),
           "fallback": int_sum(ranks, (c.outcome >= 2).astype(np.int64))}
    st.history.append(row)
