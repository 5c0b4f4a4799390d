"""A movie recommender with LLM users (RecAgent / GenSim §2.1): browse, watch, rate, chat, post.

Each tick every active user (activity trait) gets a page of ``page_size``
movies from the recommender system — popularity, content-based (faiss over
item embeddings) or matrix factorisation refitted every ``refit_every`` ticks
on all ratings collected so far — and, in ONE batched LLM call for all of
them, watches one and rates it (0.5–5.0 in 0.5 steps; its own opinion and the
rating posted after seeing the others' average) or skips, and may tell a
friend (chat) or all friends (post) about it; friends see that next tick.

Per tick → ``metrics.parquet``: rating distribution, mean rating, catalogue
coverage (recommended / watched so far), mean per-user genre entropy (the
information cocoon) and conformity (the shift of posted ratings toward the
shown average, from the users' own opinion); ``report`` plots them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from socius.components.memory import LongTermMemory, ShortTermMemory
from socius.components.profile import Profile
from socius.ecs import Component, Message, Ragged, Resource, Scalar, String, Vector, World, system
from socius.ecs.ragged import RaggedArray
from socius.mpi import bincount, exact_mean, gather_ordered, int_sum, owned_block, world_ranks
from socius.app.report import history_columns, is_lead, pyplot
from socius.llm import Decision, decide
from socius.systems import ensure_environment, environment_systems, parse_interventions
from socius.systems.environment import \
    schedule_interventions
from socius.systems import MemoryEmbedder, MemoryParams, join_lines, memorize, recent, retrieve

from . import prompts, recsys
from .data import GENRES, N_GENRES, Catalogue, check_headers, load_catalogue
from .mock import recommender_policy
from .users import conformity_phrase, population_specs, taste_phrases, user_columns

STR = np.dtypes.StringDType()
RECOMMENDERS = ("popularity", "content", "mf")
SHARE_CODE = {"none": 0, "chat": 1, "post": 2}


@dataclass
class RecommenderConfig:
    """Options of ``socius run recommender`` (also a ``--config`` TOML table); see the scenario README."""

    agents: int = 200
    data: str = ""                    # MovieLens folder (movies.csv + ratings.csv, or u.item + u.data); "" = shipped
    recommender: str = "mf"           # popularity | content | mf
    page_size: int = 5
    refit_every: int = 2              # mf: refit on all ratings so far every F ticks
    factors: int = 16
    reg: float = 0.1
    als_iters: int = 8
    mf_backend: str = "numpy"         # numpy | jax (the jax extra)
    embedder: str = "hashing"         # content: hashing | minilm (the embeddings extra)
    liked: float = 4.0                # content: items rated >= liked make the user's query
    friends: int = 3
    memories: int = 3                 # memories shown in the prompt (0..8)
    long_memory: bool = False         # also long-term memory (embedded with `embedder`); the prompt then shows
                                      # the memories most relevant to the page (recency × importance × relevance)
    show_average: bool = True         # show the others' average rating on the page (conformity)
    taste: str = "data"               # data | dirichlet
    taste_concentration: float = 0.5  # dirichlet: alpha
    temperature: float = 0.7
    max_tokens: int = 48
    population: dict = field(default_factory=dict)
    interventions: list = field(default_factory=list)  # [[interventions]] tick, set, value, where, ids

    def validate(self) -> None:
        if self.agents < 1:
            raise ValueError(f"agents: must be >= 1, got {self.agents}")
        if self.recommender not in RECOMMENDERS:
            raise ValueError(f"recommender: must be one of {', '.join(RECOMMENDERS)}, got {self.recommender!r}")
        if not 1 <= self.page_size <= 50:
            raise ValueError(f"page_size: must be in 1..50, got {self.page_size}")
        for name in ("refit_every", "factors", "als_iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.reg <= 0:
            raise ValueError(f"reg: must be > 0, got {self.reg}")
        if self.mf_backend not in ("numpy", "jax"):
            raise ValueError(f"mf_backend: must be 'numpy' or 'jax', got {self.mf_backend!r}")
        if self.embedder not in ("hashing", "minilm"):
            raise ValueError(f"embedder: must be 'hashing' or 'minilm', got {self.embedder!r}")
        if not 0.5 <= self.liked <= 5.0:
            raise ValueError(f"liked: must be in 0.5..5.0, got {self.liked}")
        if not 0 <= self.memories <= ShortTermMemory.capacity:
            raise ValueError(f"memories: must be in 0..{ShortTermMemory.capacity}, got {self.memories}")
        if self.friends < 0:
            raise ValueError(f"friends: must be >= 0, got {self.friends}")
        if self.taste not in ("data", "dirichlet"):
            raise ValueError(f"taste: must be 'data' or 'dirichlet', got {self.taste!r}")
        if self.taste_concentration <= 0:
            raise ValueError(f"taste_concentration: must be > 0, got {self.taste_concentration}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        if self.max_tokens < 8:
            raise ValueError(f"max_tokens: must be >= 8, got {self.max_tokens}")
        if self.data:
            check_headers(self.data)  # DataError (a ConfigError) names the file
        population_specs(self.population)
        parse_interventions(self.interventions)  # ConfigError naming interventions[i].<field>


# ---------------------------------------------------------------- components, messages, resources
class Traits(Component):
    """What drives a user's behaviour besides taste (the profile itself is the standard ``Profile``)."""

    activity = Scalar(np.float32)    # chance to browse in a tick
    conformity = Scalar(np.float32)  # 0..1: how far others' average pulls the posted rating


class Taste(Component):
    """Genre taste ``[20] float32`` summing to 1 (order: ``data.GENRES``)."""

    genres = Vector(np.float32, N_GENRES)


class Friends(Component):
    """Entity IDs of the user's friends (who see their chats and posts)."""

    ids = Ragged(np.int64)


class History(Component):
    """What the user watched, in order: item index, posted rating and own opinion."""

    items = Ragged(np.int32)
    ratings = Ragged(np.float32)
    own = Ragged(np.float32)


class Page(Component):
    """This tick's recommendation page (item indices, best first; empty: not browsing)."""

    items = Ragged(np.int32)


class Choice(Component):
    """This tick's action: item watched (-1: none), posted rating, own opinion, the average shown, sharing."""

    item = Scalar(np.int32, default=-1)
    rating = Scalar(np.float32)
    own = Scalar(np.float32)
    shown = Scalar(np.float32)       # NaN when no average was shown
    share = Scalar(np.int8)          # 0 none, 1 chat, 2 post
    outcome = Scalar(np.int8)        # decide() outcome (ok / extracted / fallback / failed)


class Mention(Message):
    """A user telling a friend about a movie (via 1: a chat to one friend, 2: a post to all friends)."""

    item = Scalar(np.int32)
    rating = Scalar(np.float32)
    name = String()
    via = Scalar(np.int8)


class RecState(Resource):
    """Shared environment state (saved): watch counts and rating sums per item, coverage, model, history."""

    counts: np.ndarray = None        # [M] int64 ratings per item (the data's plus the simulated ones)
    half_sums: np.ndarray = None     # [M] int64 sum of ratings in half stars
    recommended: np.ndarray = None   # [M] bool: ever on a page
    watched: np.ndarray = None       # [M] bool: ever watched in the simulation
    p: np.ndarray = None             # [U, k] float64 user factors (mf)
    q: np.ndarray = None             # [M, k] float64 item factors (mf)
    mu: float = 0.0
    fitted_at: int = -1              # tick of the last mf fit (-1: none yet)
    history: list = field(default_factory=list)


class RecSetup(Resource):
    """Rebuilt from the config at build (not saved): catalogue, texts, embeddings, faiss index, decision."""

    __snapshot__ = False
    cfg: RecommenderConfig = None
    cat: Catalogue = None
    labels: np.ndarray = None        # [M] "[id 17] Title (1994) - Drama|Romance"
    item_vecs: np.ndarray = None     # [M, d] content embeddings
    genre_vecs: np.ndarray = None    # [20, d]
    index: object = None             # VectorIndex over item_vecs
    browse: Decision = None


# ---------------------------------------------------------------- systems
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


def _append(r: RaggedArray, rows: np.ndarray, values: np.ndarray) -> RaggedArray:
    """``r`` with one value appended to each of ``rows`` (sorted, unique)."""
    lengths = r.lengths.copy()
    lengths[rows] += 1
    offsets = np.zeros(len(r) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), r.values.dtype)
    is_new = np.zeros(out.shape[0], bool)
    is_new[offsets[rows + 1] - 1] = True
    out[~is_new] = r.values
    out[offsets[rows + 1] - 1] = values
    return RaggedArray(offsets, out)


@system(phase="pre", reads=(History,), resources=(RecState, RecSetup))
def refit_model(ctx):
    """mf: every ``refit_every`` ticks, fit ALS on all ratings so far, gathered in global ID order."""
    setup = ctx.resource(RecSetup)
    cfg = setup.cfg
    if cfg.recommender != "mf" or ctx.tick % cfg.refit_every:
        return
    v = ctx.query(History)
    ranks = world_ranks(ctx.world)
    ids, items = gather_ordered(ranks, v.ids, v[History].items)
    _, ratings = gather_ordered(ranks, v.ids, v[History].ratings)
    if items.values.shape[0] == 0:
        return
    fit = recsys.fit_als_jax if cfg.mf_backend == "jax" else recsys.fit_als
    st = ctx.resource(RecState)
    st.p, st.q, st.mu = fit(np.repeat(ids, items.lengths), items.values, ratings.values, cfg.agents,
                            setup.cat.n_items, k=cfg.factors, reg=cfg.reg, iters=cfg.als_iters, seed=ctx.world.seed)
    st.fitted_at = ctx.tick


@system(phase="pre", reads=(Traits, Taste, History), writes=(Page,), resources=(RecState, RecSetup))
def recommend_items(ctx):
    """Active users (a draw against their activity) get a page from the chosen recommender."""
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
    v.set(Page, items=_ragged(pages, rows, len(v)))


def _friend_notes(batch, ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(targets [m], texts [m])``: one "Friend X posted about …" memory per message addressed to one of ``ids``."""
    if len(batch) == 0:
        return np.zeros(0, np.int64), np.zeros(0, dtype=STR)
    mine = np.isin(batch.target, ids)
    m = np.flatnonzero(mine)
    verb = np.where(batch.via[m] == 2, " posted about ", " told them about ").astype(STR)
    text = np.strings.add(np.strings.add(np.strings.add(np.strings.add(np.strings.add(
        "Friend ", batch.name[m]), verb), labels[batch.item[m]]), ", rating it "),
        np.strings.mod("%.1f", batch.rating[m].astype(np.float64)).astype(STR))
    return batch.target[m], np.strings.add(text, ".").astype(STR)


@system(phase="update", reads=(Profile, Traits, Taste, Page, Friends),
        writes=(History, Choice, ShortTermMemory, LongTermMemory),
        resources=(RecState, RecSetup), sends=(Mention,), receives=(Mention,))
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
    taste = v[Taste].genres[rows]
    likes, dislikes = taste_phrases(taste)
    hist = v[History]
    heard, notes = _friend_notes(ctx.read(Mention), v.ids, setup.labels)
    long = LongTermMemory if cfg.long_memory else None
    memorize(ctx.world, heard, notes, 3.0, memory=long)  # what friends said (to all they told), before browsing
    page_text = prompts.render_pages(dense, lines)
    if cfg.long_memory and cfg.memories:  # the memories most relevant to this page
        memories = retrieve(ctx.world, ids, page_text, k=cfg.memories).joined(empty="")
        header = "Remembers, most relevant first:\n"
    else:
        memories = join_lines(recent(ctx.world, ids, cfg.memories), empty="")
        header = "Remembers, newest first:\n"
    fields = {"name": v[Profile].name[rows], "age": v[Profile].age[rows], "gender": v[Profile].gender[rows],
              "occupation": v[Profile].occupation[rows], "likes": likes, "dislikes": dislikes,
              "conformity": conformity_phrase(v[Traits].conformity[rows]),
              "memories": np.where(np.strings.str_len(memories) > 0, np.strings.add(np.strings.add(
                  header, memories), "\n"), "").astype(STR),
              "page": page_text}
    res = decide(ctx.world, setup.browse, ids, fields)
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
    cols = {"item": np.full(n, -1, np.int32), "rating": np.zeros(n, np.float32), "own": np.zeros(n, np.float32),
            "shown": np.full(n, np.nan, np.float32), "share": np.zeros(n, np.int8), "outcome": np.zeros(n, np.int8)}
    for k, val in (("item", item), ("rating", rating), ("own", own), ("shown", shown), ("share", share),
                   ("outcome", res.outcome)):
        cols[k][rows] = val
    v.set(Choice, **cols)
    w = rows[ok]
    v.set(History, items=_append(hist.items, w, item[ok].astype(np.int32)),
          ratings=_append(hist.ratings, w, rating[ok].astype(np.float32)),
          own=_append(hist.own, w, own[ok].astype(np.float32)))
    seen = np.strings.add(np.strings.add(np.strings.add("Watched ", setup.cat.title[item[ok]]), " and rated it "),
                          np.strings.mod("%.1f", rating[ok]).astype(STR))
    memorize(ctx.world, ids[ok], seen, np.clip(2.0 + 2.0 * np.abs(rating[ok] - 3.0), 1.0, 10.0), memory=long)
    # sharing: a chat goes to one friend (drawn), a post to every friend
    friends = v[Friends].ids.take(rows)
    fl = friends.lengths
    chat = (share == 1) & (fl > 0)
    if chat.any():
        pick = ctx.rng("chat").integers(ids[chat], 0, fl[chat])
        ctx.send(Mention, sender=ids[chat], target=friends.values[friends.offsets[:-1][chat] + pick],
                 item=item[chat].astype(np.int32), rating=rating[chat].astype(np.float32),
                 name=v[Profile].name[rows][chat], via=np.int8(1))
    post = (share == 2) & (fl > 0)
    if post.any():
        sub = friends.take(np.flatnonzero(post))
        rep = sub.lengths
        ctx.send(Mention, sender=np.repeat(ids[post], rep), target=sub.values,
                 item=np.repeat(item[post], rep).astype(np.int32), rating=np.repeat(rating[post], rep).astype(
                     np.float32), name=np.repeat(v[Profile].name[rows][post], rep), via=np.int8(2))


def genre_entropy(items: RaggedArray, genres: np.ndarray) -> np.ndarray:
    """``[n]`` entropy (bits) of each user's watched genres (an item's genres share one unit); NaN if none."""
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
    """Update the shared counts (global reductions) and append this tick's metrics."""
    setup, st = ctx.resource(RecSetup), ctx.resource(RecState)
    ranks = world_ranks(ctx.world)
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


# ---------------------------------------------------------------- build, metrics, report
def _embeddings(cfg: RecommenderConfig, cat: Catalogue):
    from socius.text.embed import make_embedder
    from socius.text.vector_index import VectorIndex

    emb = make_embedder(cfg.embedder)
    text = np.strings.add(np.strings.add(cat.title, ". "), np.strings.replace(cat.genre_names(), "|", ", "))
    item_vecs = emb.embed(text)
    genre_vecs = emb.embed(np.array([f"{g} movies" for g in GENRES], dtype=STR))
    return item_vecs, genre_vecs, VectorIndex.build(np.arange(cat.n_items, dtype=np.int64), item_vecs)


def build(world: World, cfg: RecommenderConfig) -> None:
    """Load the catalogue, spawn the users (this rank's share), set up the recommender and the systems."""
    cfg.validate()
    cat = load_catalogue(cfg.data)
    setup = RecSetup(cfg=cfg, cat=cat, labels=prompts.item_labels(cat),
                     browse=prompts.browse_decision(cfg.temperature, cfg.max_tokens))
    if cfg.recommender == "content":
        setup.item_vecs, setup.genre_vecs, setup.index = _embeddings(cfg, cat)
    world.insert_resource(setup)
    m = cat.n_items
    world.insert_resource(RecState(counts=cat.counts(), half_sums=cat.half_star_sums(),
                                   recommended=np.zeros(m, bool), watched=np.zeros(m, bool)))
    ids = owned_block(world, cfg.agents)
    cols = user_columns(cfg.population, cfg.taste, cfg.taste_concentration, cat, ids, world.seed)
    k = min(cfg.friends, cfg.agents - 1)
    if k > 0:
        x = world.rng("friends", 0).integers(ids, 0, cfg.agents - 1, size=k)
        friends = RaggedArray.from_lengths(np.full(ids.shape[0], k), (x + (x >= ids[:, None])).reshape(-1))
    else:
        friends = RaggedArray.empty(ids.shape[0], np.int64)
    n = ids.shape[0]
    likes, dislikes = taste_phrases(cols["taste"])
    components = {
        Profile: {"name": cols["name"], "gender": cols["gender"], "age": np.asarray(cols["age"], np.int32),
                  "occupation": cols["occupation"],
                  "background": np.strings.add(np.strings.add(np.strings.add("likes ", likes), " films; dislikes "),
                                               dislikes)},
        Traits: {"activity": np.asarray(cols["activity"], np.float32),
                 "conformity": np.asarray(cols["conformity"], np.float32)},
        Taste: {"genres": cols["taste"]}, Friends: {"ids": friends},
        History: {}, Page: {}, Choice: {"shown": np.nan}, ShortTermMemory: {}}
    if cfg.long_memory:  # [n, 32, 384] float16 embedded memories per user, retrieved by relevance to the page
        from socius.text.embed import make_embedder
        world.insert_resource(MemoryEmbedder(make_embedder(cfg.embedder)))
        world.insert_resource(MemoryParams(top_k=max(cfg.memories, 1)))
        components[LongTermMemory] = {}
    world.spawn(n, components, ids=ids)
    ensure_environment(world)  # interventions scheduled in the config apply in `pre`, before the recommender
    world.add_systems(*environment_systems(), refit_model, recommend_items, browse_page, record_tick)
    schedule_interventions(world, cfg.interventions)


def metrics(world: World) -> dict:
    return history_columns(world.resource(RecState).history)


def report(world: World, out: Path) -> None:
    """``recommender.png``: rating distribution, coverage and genre entropy over ticks (needs matplotlib)."""
    h = world.resource(RecState).history
    plt = pyplot() if h and is_lead(world) else None  # world-wide values only: one rank draws them
    if plt is None:
        return
    cfg = world.resource(RecSetup).cfg
    ticks = [r["tick"] for r in h]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4))
    steps = np.arange(1, 11) / 2
    total = np.array([sum(r[f"r{k * 5:02d}"] for r in h) for k in range(1, 11)], float)
    last = np.array([h[-1][f"r{k * 5:02d}"] for k in range(1, 11)], float)
    a.bar(steps - 0.11, total / max(total.sum(), 1), width=0.22, label="all ticks")
    a.bar(steps + 0.11, last / max(last.sum(), 1), width=0.22, label=f"tick {ticks[-1]}")
    a.set_xlabel("rating")
    a.set_ylabel("share of ratings")
    a.set_xticks(steps)
    a.set_title("Rating distribution")
    a.legend(fontsize=8)
    b.plot(ticks, [r["coverage_recommended"] for r in h], "o-", label="recommended so far")
    b.plot(ticks, [r["coverage_watched"] for r in h], "s--", label="watched so far")
    b.set_ylim(0, 1.02)
    b.set_xlabel("tick")
    b.set_title("Catalogue coverage")
    b.legend(fontsize=8)
    c.plot(ticks, [r["genre_entropy"] for r in h], "o-", color="C2")
    c.set_xlabel("tick")
    c.set_ylabel("bits")
    c.set_title("Mean per-user genre entropy")
    fig.suptitle(f"recommender = {cfg.recommender}, {cfg.agents} users")
    fig.tight_layout()
    fig.savefig(out / "recommender.png", dpi=110)
    plt.close(fig)


def _mock_policy(cfg: RecommenderConfig):
    return recommender_policy(cfg, load_catalogue(cfg.data))


def _scenario():
    from socius.app.registry import Scenario
    return Scenario(name="recommender", summary="Movie recommender with LLM users: watch, rate, chat, post "
                    "(RecAgent / GenSim §2.1)", config=RecommenderConfig, build=build, metrics=metrics,
                    unit="steps", mock_policy=_mock_policy, report=report)


SCENARIO = _scenario()
