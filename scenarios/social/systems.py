"""The social scenario's tick: read posts, get the news, decide, calm down, measure.

In schedule order (``build`` adds them; the environment's
``apply_interventions`` runs between ``read_posts`` and ``inject_event``):

1. :func:`read_posts` (pre): each agent reads the posts sent last tick by
   those it follows — how many, their average stance, the strongest mood,
   the authors of the first ``MAX_SHOWN`` — and becomes aware on its first.
2. :func:`inject_event` (pre): at ``event_tick`` the seeds get the news item,
   as does every agent whose ``Inbox.news`` an intervention set this tick.
3. :func:`decide_actions` (update): the acting agents make ONE batched LLM
   call (:func:`socius.llm.decide`: post / forward / idle, emotion, stance);
   posts and forwards are sent as :class:`Post` messages.
4. :func:`relax_emotions` (update): agents that did not act calm down one
   level with probability ``relax``.
5. :func:`record_metrics` (post): one row of exact global figures
   (:mod:`socius.mpi.reduce`) appended to :class:`SocialStats`.

Prompts are assembled as Arrow string columns (one rendered line per post,
gathered for every reader), never per agent in Python.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.components import ModelChoice
from socius.ecs import STR, system
from socius.ecs.storage import find_rows
from socius.llm import LLM, Template, decide
from socius.mpi import bincount, exact_mean, histogram, int_sum, world_ranks
from socius.systems import model_choice

from . import prompts
from .components import (MAX_SHOWN, NEWS_CONTENT, TEXT_CHARS, Action, Follows, Inbox, Mood, Post, Profile,
                         SocialEvent, SocialPrompts, SocialStats)

_POST = Template(prompts.POST_LINE, untrusted=("text",))
_NEWS = Template(prompts.NEWS_LINE, untrusted=("text",))
_EMPTY = pa.scalar("", pa.large_string())
_VERBS = np.array(["posted", "posted", "forwarded"], dtype=STR)   # by Post.action
#: "%+.2f" of every stance rounded to hundredths, -1.00 .. +1.00 (a lookup is ~10x faster than formatting)
STANCE_TEXT = np.array(["%+.2f" % (i / 100) for i in range(-100, 101)], dtype=STR)


def stance_text(x: np.ndarray) -> np.ndarray:
    """``[n]`` stances in [-1, 1] as ``+0.42`` strings."""
    return STANCE_TEXT[np.clip(np.round(np.asarray(x, np.float64) * 100), -100, 100).astype(np.int64) + 100]


def _rows_by_id(senders: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each of ``ids`` among ``senders`` (unique) and whether it is there: a dense lookup table
    over the ID range (one gather, no search; 8 bytes per ID of the population)."""
    if not ids.shape[0] or not senders.shape[0]:
        return np.zeros(ids.shape[0], np.int64), np.zeros(ids.shape[0], bool)
    top = int(max(senders.max(), ids.max())) + 1
    table = np.full(top, -1, np.int64)
    table[senders] = np.arange(senders.shape[0])
    rows = table[ids]
    found = rows >= 0
    return np.where(found, rows, 0), found


@system(phase="pre", reads=(Follows,), writes=(Inbox, Mood), receives=(Post,))
def read_posts(ctx):
    """Each agent reads last tick's posts by those it follows; a first post makes it aware."""
    batch = ctx.read(Post)
    v = ctx.query(Follows, Inbox, Mood)
    n = len(v)
    shown = np.full((n, MAX_SHOWN), -1, np.int64)
    received = np.zeros(n, np.int32)
    avg = np.zeros(n, np.float32)
    peak = np.zeros(n, np.int8)
    if len(batch):
        f = v[Follows].ids
        rows, found = _rows_by_id(batch.sender, f.values)        # one post per author and tick
        owner = np.repeat(np.arange(n, dtype=np.int64), f.lengths)[found]   # ascending
        post = rows[found]
        cnt = np.bincount(owner, minlength=n)
        received = cnt.astype(np.int32)
        att = np.bincount(owner, weights=batch.attitude[post].astype(np.float64), minlength=n)
        avg = (att / np.maximum(cnt, 1)).astype(np.float32)
        emo = batch.emotion[post]
        peak = np.where(np.bincount(owner, weights=emo == 2, minlength=n) > 0, 2,
                        np.where(np.bincount(owner, weights=emo == 1, minlength=n) > 0, 1, 0)).astype(np.int8)
        rank = np.arange(owner.shape[0]) - np.searchsorted(owner, owner)   # position among the agent's posts
        sel = rank < MAX_SHOWN                                             # the first ones, in follow order
        shown[owner[sel], rank[sel]] = batch.sender[post[sel]]
    v.set(Inbox, received=received, shown=shown, avg_attitude=avg, peak=peak, news=False)
    v.set(Mood, rows=(v[Mood].aware_since < 0) & (received > 0), aware_since=ctx.tick)


@system(phase="pre", writes=(Inbox, Mood), resources=(SocialEvent,))
def inject_event(ctx):
    """The news item reaches the seed agents at ``event_tick``, and any agent whose ``Inbox.news`` an
    intervention set this tick (e.g. ``set = "Inbox.news"``, ``where = "Profile.occupation == 'journalist'"``)."""
    ev = ctx.resource(SocialEvent)
    v = ctx.query(Inbox, Mood)
    news = np.array(v[Inbox].news)
    if ctx.tick == ev.event_tick and ev.seeds:
        rows, found = v.rows_of(np.asarray(ev.seeds, dtype=np.int64))   # this rank's share of the seeds
        news[rows[found]] = True
    r = np.flatnonzero(news)
    if not r.shape[0]:
        return
    ib = v[Inbox]
    k = ib.received[r].astype(np.float64)
    v.set(Inbox, rows=r, news=True, received=ib.received[r] + 1,
          avg_attitude=((ib.avg_attitude[r] * k + ev.news_stance) / (k + 1)).astype(np.float32),
          peak=np.maximum(ib.peak[r], ev.news_emotion))
    since = v[Mood].aware_since[r]
    v.set(Mood, rows=r[since < 0], aware_since=ctx.tick)


def _post_lines(batch, shown: np.ndarray, k: int, lines: pa.Array) -> pa.Array | None:
    """``[m]`` the ``k``-th shown post's line of each acting agent ("" where none); ``lines``: every post's
    rendered line, aligned with ``batch``."""
    sender = shown[:, k]
    has = sender >= 0
    if not has.any():
        return None
    rows, _ = find_rows(batch.sender, sender)
    return pc.if_else(pa.array(has), lines.take(pa.array(rows)), _EMPTY)


def _prompt_posts(ev: SocialEvent, batch, shown: np.ndarray, has_news: np.ndarray) -> pa.Array:
    """``[m]`` the post lines of each acting agent's prompt: the news item if it got it, then the
    ``shown`` posts (each rendered, quoted and defused once, then gathered for every reader)."""
    parts = [pc.if_else(pa.array(has_news), _NEWS.render_arrow({"text": ev.headline}, 1)[0], _EMPTY)]
    if len(batch):
        lines = _POST.render_arrow({"sender": batch.sender, "verb": _VERBS[batch.action], "text": batch.text},
                                   len(batch))
        parts += [p for p in (_post_lines(batch, shown, k, lines) for k in range(MAX_SHOWN)) if p is not None]
    posts = pc.binary_join_element_wise(*parts, _EMPTY)
    return pc.if_else(pc.equal(posts, _EMPTY), pa.scalar(prompts.NO_POSTS, pa.large_string()), posts)


@system(phase="update", reads=(Profile, Inbox, ModelChoice), writes=(Mood, Action), sends=(Post,), receives=(Post,),
        resources=(SocialEvent, SocialPrompts, LLM))
def decide_actions(ctx):
    """The agents that act this tick ask their LLM (one batched call), update mood and stance, and post."""
    ev = ctx.resource(SocialEvent)
    v = ctx.query(Profile, Inbox, Mood, Action)
    since = v[Mood].aware_since
    received, news = v[Inbox].received, v[Inbox].news
    u = ctx.rng("social:act").random(v.ids, 2)
    act = (since >= 0) & (news | ((received > 0) & (u[:, 0] < ev.react)) | (u[:, 1] < ev.activity))
    idx = np.flatnonzero(act)
    if not idx.shape[0]:
        return
    ids = v.ids[idx]
    m = idx.shape[0]
    batch = ctx.read(Post)
    shown = np.asarray(v[Inbox].shown)[idx]
    shown[:, ev.shown_posts:] = -1
    has_news = np.asarray(news)[idx]
    ago = ctx.tick - since[idx]
    heard = np.where(ago == 0, prompts.HEARD_NOW,
                     np.strings.add(np.strings.add("You heard of it ", ago.astype(STR)), " hours ago.")).astype(STR)
    emo_names = np.array(prompts.EMOTIONS, dtype=STR)
    mood, stance = v[Mood].emotion[idx], v[Mood].attitude[idx]
    fields = {"headline": ev.headline, "name": v[Profile].name[idx], "age": v[Profile].age[idx],
              "occupation": v[Profile].occupation[idx], "trait": v[Profile].trait[idx],
              "posts": _prompt_posts(ev, batch, shown, has_news),
              "n_posts": received[idx], "avg_stance": stance_text(v[Inbox].avg_attitude[idx]),
              "peak": emo_names[v[Inbox].peak[idx]], "mood": emo_names[mood],
              "stance": stance_text(stance), "heard": heard}
    sp = ctx.resource(SocialPrompts)
    models, adapters = model_choice(ctx, ids)
    res = decide(ctx, sp.decision, ids, fields, models=models, adapters=adapters, dedup=sp.dedup)
    good = res.outcome <= 1  # ok or extracted; a fallback keeps the old mood and stance
    act_s, emo_s = res.values["action"], res.values["emotion"]
    kind = ((act_s == "post") * 1 + (act_s == "forward") * 2).astype(np.int8)       # idle (or fallback) 0
    new_emo = ((emo_s == "moderate") * 1 + (emo_s == "intense") * 2).astype(np.int8)
    emotion = np.where(good, new_emo, mood).astype(np.int8)
    attitude = np.where(good, res.values["attitude"], stance).astype(np.float32)
    v.set(Mood, rows=idx, emotion=emotion, attitude=attitude)
    # what a forward passes on: the news item if the agent got it, else the first post it read
    src_rows, src_found = find_rows(batch.sender, shown[:, 0]) if len(batch) else (np.zeros(m, np.int64),
                                                                                     np.zeros(m, bool))
    src_found &= shown[:, 0] >= 0
    can_forward = has_news | src_found
    kind = np.where((kind == 2) & ~can_forward, 1, kind).astype(np.int8)   # nothing to forward: a post
    fwd_content = np.where(has_news, NEWS_CONTENT, batch.content[src_rows] if len(batch) else -1)
    fwd_text = np.where(has_news, ev.headline, batch.text[src_rows] if len(batch) else "").astype(STR)
    own = np.int64(ctx.tick) * (np.int64(1) << np.int64(40)) + ids
    content = np.where(kind == 2, fwd_content, np.where(kind == 1, own, -1)).astype(np.int64)
    text = np.where(kind == 2, fwd_text, np.strings.slice(res.values["text"], 0, TEXT_CHARS)).astype(STR)
    v.set(Action, rows=idx, kind=kind, tick=ctx.tick, content=content, outcome=res.outcome)
    out = kind > 0
    ctx.send(Post, sender=ids[out], content=content[out], action=kind[out], emotion=emotion[out],
             attitude=attitude[out], text=text[out])


@system(phase="update", reads=(Action,), writes=(Mood,), resources=(SocialEvent,))
def relax_emotions(ctx):
    """Agents that did not act this tick calm down one level with probability ``relax``."""
    ev = ctx.resource(SocialEvent)
    v = ctx.query(Mood, Action)
    emo = v[Mood].emotion
    calm_down = (v[Action].tick != ctx.tick) & (emo > 0) & (ctx.rng("social:relax").random(v.ids) < ev.relax)
    if calm_down.any():
        v.set(Mood, rows=calm_down, emotion=(emo[calm_down] - 1).astype(np.int8))


@system(phase="post", reads=(Mood, Action), resources=(SocialEvent, SocialStats))
def record_metrics(ctx):
    """This tick's figures, reduced exactly over all ranks."""
    ev = ctx.resource(SocialEvent)
    ranks = world_ranks(ctx)
    v = ctx.query(Mood, Action)
    since, emo, att = v[Mood].aware_since, v[Mood].emotion, v[Mood].attitude
    aware = since >= 0
    acted = v[Action].tick == ctx.tick
    kind, outcome = v[Action].kind, v[Action].outcome
    n_aware = int_sum(ranks, aware)
    emotions = bincount(ranks, emo[aware], 3)
    acts = bincount(ranks, kind[acted], 3)
    outcomes = bincount(ranks, outcome[acted], 4)
    hist = histogram(ranks, att[aware].astype(np.float64), np.linspace(-1.0, 1.0, ev.bins + 1))
    row = {"tick": ctx.tick, "aware": n_aware, "new_aware": int_sum(ranks, since == ctx.tick),
           "aware_share": n_aware / max(1, int_sum(ranks, np.ones(len(v), np.int64))),
           "calm": int(emotions[0]), "moderate": int(emotions[1]), "intense": int(emotions[2])}
    for i, name in enumerate(prompts.EMOTIONS):
        row[f"{name}_share"] = float(emotions[i] / n_aware) if n_aware else float("nan")
    row.update({"attitude_mean": exact_mean(ranks, att[aware].astype(np.float64)),
                "acting": int(acts.sum()), "posts": int(acts[1]), "forwards": int(acts[2]), "idle": int(acts[0]),
                "fallback": int(outcomes[2] + outcomes[3])})
    row.update({f"attitude_bin_{i}": int(c) for i, c in enumerate(hist)})
    ctx.resource(SocialStats).history.append(row)
