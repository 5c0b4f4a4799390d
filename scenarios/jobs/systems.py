"""The job market's tick: one system per stage of the hiring pipeline, then the measures.

Every stage runs every tick for whatever reached it; messages sent in tick
*t* are read in *t + 1*, so one application takes five ticks from ad to
hire. In schedule order (``build`` adds them so):

1. :func:`start_tick` (``pre``) clears this tick's counters;
2. :func:`respond_to_offers` — seekers with offers accept one or decline; a hire leaves the pool;
3. :func:`close_hires` — an accepted offer fills its opening, a declined one reopens it;
4. :func:`decide_offers` — openings read their interview answers and make at most one offer;
5. :func:`answer_interviews` — invited seekers answer the interview question;
6. :func:`screen_applications` — openings shortlist new applicants, invite some, write the question;
7. :func:`post_jobs` + :func:`search_and_apply` — the board is rebuilt from every rank's open
   openings; searching seekers query it with their CV and decide where to apply;
8. :func:`record_market` (``post``) — this tick's measures, reduced over ranks.

Each LLM stage is one batched ``decide(ctx, …)`` over the agents acting in
it (so it declares the ``LLM``); messages are grouped by target, never
looped over; counters are scattered with ``view.set(C, rows=…)``.
"""
from __future__ import annotations

import numpy as np

from socius.components import ModelChoice
from socius.ecs import STR, system
from socius.ecs.storage import find_rows
from socius.llm import LLM, decide
from socius.mpi import exact_sum, gather_ordered, int_sum, world_ranks
from socius.systems import model_choice
from socius.text.vector_index import VectorIndex

from .components import (COUNTERS, Answer, Application, Invite, JobMarket, JobsRuntime, Offer, Opening, Reply,
                         Search, Seeker, Vacancy)
from .market import cat, chosen_numbers, group, in_ragged, join_groups, money, quoted


@system(phase="pre", resources=(JobsRuntime,))
def start_tick(ctx):
    ctx.resource(JobsRuntime).tick = {}


@system(phase="update", reads=(Seeker, ModelChoice), writes=(Search,), resources=(LLM, JobsRuntime),
        receives=(Offer,), sends=(Reply,))
def respond_to_offers(ctx):
    """Seekers with offers accept one (or none); a hire leaves the pool. Employed seekers decline."""
    batch, rt = ctx.read(Offer), ctx.resource(JobsRuntime)
    if not len(batch):
        return
    v = ctx.query(Seeker, Search)
    order, seekers, counts, pos = group(batch.target)
    rows = find_rows(v.ids, seekers)[0]
    searching = v[Search].status[rows] == 0
    lines = cat((pos + 1).astype(STR), ". ", batch.job[order], " Salary offered: ", money(batch.salary[order]),
                "k a year.")
    offers = join_groups(lines, counts, "\n")
    accept = np.zeros(seekers.shape[0], np.int64)
    ask = np.flatnonzero(searching)
    if ask.shape[0]:
        s = v[Seeker]
        r = rows[ask]
        models, adapters = model_choice(ctx, seekers[ask])
        res = decide(ctx, rt.respond, seekers[ask], {
            "name": s.name[r], "cv": s.cv[r], "weeks": ctx.tick, "expected": money(s.expected[r]),
            "offers": offers[ask]}, models=models, adapters=adapters)
        a = res.values["accept"].astype(np.int64)
        accept[ask] = np.where((a >= 1) & (a <= counts[ask]), a, 0)
    g = np.repeat(np.arange(seekers.shape[0]), counts)          # group of each listed offer
    took = (pos + 1) == accept[g]
    sender, salary = batch.sender[order], batch.salary[order]
    ctx.send(Reply, sender=batch.target[order], target=sender, accepted=took.astype(np.int8), salary=salary)
    hired = accept > 0
    job = np.full(seekers.shape[0], -1, np.int64)
    pay = np.zeros(seekers.shape[0])
    job[g[took]], pay[g[took]] = sender[took], salary[took]
    st = v[Search]
    v.set(Search, rows=rows, offers=st.offers[rows] + counts, declined=st.declined[rows] + (counts - hired))
    h = rows[hired]
    v.set(Search, rows=h, status=1, job=job[hired], salary=pay[hired], hired_tick=ctx.tick)
    rt.count("accepted", hired.sum())
    rt.count("declined", counts.sum() - hired.sum())
    rt.count("hires", hired.sum())
    rt.add("accepted_gap", pay[hired] - v[Seeker].expected[h])
    rt.add("time_to_hire", np.full(int(hired.sum()), ctx.tick + 1.0))


@system(phase="update", writes=(Vacancy,), receives=(Reply,))
def close_hires(ctx):
    """An accepted offer fills its opening; a declined one reopens it for the next candidates."""
    batch = ctx.read(Reply)
    if not len(batch):
        return
    v = ctx.query(Vacancy)
    rows = find_rows(v.ids, batch.target)[0]
    acc = batch.accepted == 1
    v.set(Vacancy, rows=rows, offer_to=-1)
    v.set(Vacancy, rows=rows[acc], status=1, hired=batch.sender[acc], filled_tick=ctx.tick)
    no, n = np.unique(rows[~acc], return_counts=True)
    v.set(Vacancy, rows=no, declined=v[Vacancy].declined[no] + n)


@system(phase="update", reads=(Opening, ModelChoice), writes=(Vacancy,), resources=(LLM, JobsRuntime),
        receives=(Answer,), sends=(Offer,))
def decide_offers(ctx):
    """Openings read their candidates' answers and make at most one offer each, with a salary."""
    batch, rt = ctx.read(Answer), ctx.resource(JobsRuntime)
    if not len(batch):
        return
    v = ctx.query(Opening, Vacancy)
    order, openings, counts, pos = group(batch.target)
    rows = find_rows(v.ids, openings)[0]
    va = v[Vacancy]
    ok = (va.status[rows] == 0) & (va.offer_to[rows] == -1)
    lines = cat((pos + 1).astype(STR), ". ", batch.name[order], ", ", batch.experience[order].astype(STR),
                " years, hopes for ", money(batch.expected[order]), "k. CV: ", quoted(batch.cv[order]),
                " Answer: ", quoted(batch.answer[order]))
    cands = join_groups(lines, counts, "\n")
    ask = np.flatnonzero(ok)
    if not ask.shape[0]:
        return
    o = v[Opening]
    r = rows[ask]
    models, adapters = model_choice(ctx, openings[ask])
    res = decide(ctx, rt.offer, openings[ask], {
        "ad": o.ad[r], "low": money(o.low[r]), "high": money(o.high[r]), "candidates": cands[ask]},
        models=models, adapters=adapters)
    pick = res.values["offer"].astype(np.int64)
    band_lo, band_hi = o.low[r], o.high[r]
    salary = res.values["salary"]
    salary = np.where((salary >= 0.5 * band_lo) & (salary <= 2 * band_hi), salary, (band_lo + band_hi) / 2)
    made = (pick >= 1) & (pick <= counts[ask])
    start = np.r_[0, np.cumsum(counts)[:-1]]
    msg = order[start[ask[made]] + pick[made] - 1]                # the chosen candidate's Answer message
    ctx.send(Offer, sender=openings[ask[made]], target=batch.sender[msg], job=o.ad[r[made]], salary=salary[made])
    v.set(Vacancy, rows=r[made], offer_to=batch.sender[msg], offers=va.offers[r[made]] + 1)
    rt.count("offers", made.sum())
    rt.add("offer_gap", salary[made] - batch.expected[msg])


@system(phase="update", reads=(Seeker, ModelChoice), writes=(Search,), resources=(LLM, JobsRuntime),
        receives=(Invite,), sends=(Answer,))
def answer_interviews(ctx):
    """Invited seekers who are still searching answer the interview question (one batched call)."""
    batch, rt = ctx.read(Invite), ctx.resource(JobsRuntime)
    if not len(batch):
        return
    v = ctx.query(Seeker, Search)
    rows = find_rows(v.ids, batch.target)[0]
    seen, n = np.unique(rows, return_counts=True)
    v.set(Search, rows=seen, invites=v[Search].invites[seen] + n)
    live = np.flatnonzero(v[Search].status[rows] == 0)
    if not live.shape[0]:
        return
    s, r = v[Seeker], rows[live]
    models, adapters = model_choice(ctx, batch.target[live])
    res = decide(ctx, rt.answer, batch.target[live], {
        "name": s.name[r], "cv": s.cv[r], "job": batch.job[live], "question": batch.question[live]},
        models=models, adapters=adapters)
    ctx.send(Answer, sender=batch.target[live], target=batch.sender[live], name=s.name[r], cv=s.cv[r],
             experience=s.experience[r], expected=s.expected[r], answer=res.values["answer"])
    rt.count("answers", live.shape[0])


@system(phase="update", reads=(Opening, ModelChoice), writes=(Vacancy,), resources=(LLM, JobMarket, JobsRuntime),
        receives=(Application,), sends=(Invite,))
def screen_applications(ctx):
    """Open openings read their best-matching new applicants, invite some and write the question."""
    batch, rt, mk = ctx.read(Application), ctx.resource(JobsRuntime), ctx.resource(JobMarket)
    if not len(batch):
        return
    v = ctx.query(Opening, Vacancy)
    order, openings, counts, pos = group(batch.target, key=batch.match)
    rows = find_rows(v.ids, openings)[0]
    va = v[Vacancy]
    v.set(Vacancy, rows=rows, applicants=va.applicants[rows] + counts)
    listed = pos < mk.shortlist
    g = np.repeat(np.arange(openings.shape[0]), counts)
    m = order[listed]
    lines = cat((pos[listed] + 1).astype(STR), ". ", batch.name[m], ", ", batch.experience[m].astype(STR),
                " years, expects ", money(batch.expected[m]), "k, match ", np.strings.mod("%.2f", batch.match[m]),
                ". CV: ", quoted(batch.cv[m]))
    shown = np.minimum(counts, mk.shortlist)
    applicants_text = join_groups(lines, shown, "\n")
    ask = np.flatnonzero(va.status[rows] == 0)
    if not ask.shape[0]:
        return
    o, r = v[Opening], rows[ask]
    models, adapters = model_choice(ctx, openings[ask])
    res = decide(ctx, rt.screen, openings[ask], {
        "ad": o.ad[r], "applicants": applicants_text[ask], "max_invites": mk.max_invites},
        models=models, adapters=adapters)
    chosen = chosen_numbers(res.values["invite"], mk.shortlist)                 # [a, shortlist]
    chosen &= np.cumsum(chosen, axis=1) <= mk.max_invites
    chosen &= np.arange(mk.shortlist)[None, :] < shown[ask][:, None]
    a_of = np.full(openings.shape[0], -1, np.int64)
    a_of[ask] = np.arange(ask.shape[0])
    sel = listed & (a_of[g] >= 0)
    sel[sel] = chosen[a_of[g[sel]], pos[sel]]
    msg = order[sel]
    q = np.full(openings.shape[0], "", STR)
    q[ask] = np.strings.slice(res.values["question"], 0, 300)
    ctx.send(Invite, sender=batch.target[msg], target=batch.sender[msg], job=o.ad[rows[g[sel]]], question=q[g[sel]])
    inv, n = np.unique(rows[g[sel]], return_counts=True)
    v.set(Vacancy, rows=inv, invited=va.invited[inv] + n)
    rt.count("invites", sel.sum())


@system(phase="update", reads=(Opening, Vacancy), resources=(JobsRuntime,))
def post_jobs(ctx):
    """The job board: the open openings of every rank, in ID order, in a faiss index."""
    rt = ctx.resource(JobsRuntime)
    ranks = world_ranks(ctx)
    v = ctx.query(Opening, Vacancy)
    live = v[Vacancy].status == 0
    ids = v.ids[live]
    all_ids, vecs = gather_ordered(ranks, ids, v[Opening].embedding[live])
    _, ads = gather_ordered(ranks, ids, v[Opening].ad[live])
    rt.board_ids, rt.board_ads = all_ids, ads
    kind = rt.index_kind if all_ids.shape[0] >= 512 else "flat"   # approximate kinds need data to train on
    rt.board = VectorIndex.build(all_ids, vecs, kind=kind) if all_ids.shape[0] else None


@system(phase="update", reads=(Seeker, ModelChoice), writes=(Search,), resources=(LLM, JobMarket, JobsRuntime),
        sends=(Application,))
def search_and_apply(ctx):
    """Searching seekers query the board with their CV and decide where to apply (one batched call)."""
    rt, mk = ctx.resource(JobsRuntime), ctx.resource(JobMarket)
    if rt.board is None:
        return
    v = ctx.query(Seeker, Search)
    who = np.flatnonzero(v[Search].status == 0)
    if not who.shape[0]:
        return
    k = mk.search_k
    applied = v[Search].applied
    # enough hits that k remain after dropping the ads a seeker applied to already
    found, score = rt.board.search(v[Seeker].embedding[who], k + int(applied.lengths[who].max(initial=0)))
    rows = np.repeat(who, found.shape[1])
    fresh = (found.reshape(-1) >= 0) & ~in_ragged(applied, rows, found.reshape(-1))
    fresh = fresh.reshape(found.shape)
    keep = fresh & (np.cumsum(fresh, axis=1) <= k)                     # the k best ads not applied to yet
    q, j = np.nonzero(keep)                                            # row-major: seeker, then rank
    has = np.bincount(q, minlength=who.shape[0])
    if not q.shape[0]:
        return
    pos = np.arange(q.shape[0]) - np.repeat(np.r_[0, np.cumsum(has)[:-1]], has)
    opening = found[q, j]
    ad = rt.board_ads[np.searchsorted(rt.board_ids, opening)]
    lines = cat((pos + 1).astype(STR), ". ", ad, " (match ", np.strings.mod("%.2f", score[q, j].astype(np.float64)),
                ")")
    ads = join_groups(lines, has[has > 0], "\n")
    ask = np.flatnonzero(has > 0)
    s, r = v[Seeker], who[ask]
    models, adapters = model_choice(ctx, v.ids[r])
    res = decide(ctx, rt.apply, v.ids[r], {
        "name": s.name[r], "cv": s.cv[r], "weeks": ctx.tick, "expected": money(s.expected[r]), "ads": ads},
        models=models, adapters=adapters)
    chosen = chosen_numbers(res.values["apply"], k)                    # [a, k]
    a_of = np.full(who.shape[0], -1, np.int64)
    a_of[ask] = np.arange(ask.shape[0])
    go = chosen[a_of[q], pos]
    seeker_row, target = who[q[go]], opening[go]
    ctx.send(Application, sender=v.ids[seeker_row], target=target, name=s.name[seeker_row], cv=s.cv[seeker_row],
             experience=s.experience[seeker_row], expected=s.expected[seeker_row],
             match=score[q[go], j[go]].astype(np.float64))
    u, n = np.unique(seeker_row, return_counts=True)
    v.set(Search, rows=u, applications=v[Search].applications[u] + n)
    v.set(Search, applied=applied.append(seeker_row, target))
    rt.count("applications", go.sum())


@system(phase="post", reads=(Search, Vacancy, Seeker), resources=(JobMarket, JobsRuntime))
def record_market(ctx):
    """This tick's measures, reduced over ranks."""
    rt, mk = ctx.resource(JobsRuntime), ctx.resource(JobMarket)
    ranks = world_ranks(ctx)
    s = ctx.query(Search, Seeker)
    o = ctx.query(Vacancy)
    seekers = int_sum(ranks, np.array([len(s)]))
    employed_mask = s[Search].status == 1
    employed = int_sum(ranks, employed_mask)
    openings = int_sum(ranks, np.array([len(o)]))
    open_now = int_sum(ranks, o[Vacancy].status == 0)
    c = {k: int_sum(ranks, np.array([rt.tick.get(k, 0)])) for k in COUNTERS}

    def mean(name):
        vals = rt.tick.get(name, [])
        x = np.concatenate(vals) if vals else np.zeros(0)
        n = int_sum(ranks, np.array([x.shape[0]]))
        return exact_sum(ranks, x) / n if n else float("nan")

    ttl_n = employed
    ttl = exact_sum(ranks, s[Search].hired_tick[employed_mask] + 1.0) / ttl_n if ttl_n else float("nan")
    gap_all = exact_sum(ranks, (s[Search].salary - s[Seeker].expected)[employed_mask]) / ttl_n if ttl_n \
        else float("nan")
    responded = c["accepted"] + c["declined"]
    prev = mk.history[-1] if mk.history else {"accepted_total": 0, "responded_total": 0}
    acc_total, resp_total = prev["accepted_total"] + c["accepted"], prev["responded_total"] + responded
    mk.history.append({
        "tick": ctx.tick, "seekers": seekers, "employed": employed,
        "employment_rate": employed / seekers if seekers else float("nan"),
        "openings": openings, "open_openings": open_now, "filled_openings": openings - open_now, **c,
        "applications_per_opening": c["applications"] / open_now if open_now else float("nan"),
        "applicants_per_opening_total": int_sum(ranks, o[Vacancy].applicants) / openings if openings
        else float("nan"),
        "offer_acceptance": c["accepted"] / responded if responded else float("nan"),
        "accepted_total": acc_total, "responded_total": resp_total,
        "offer_acceptance_total": acc_total / resp_total if resp_total else float("nan"),
        "time_to_hire": mean("time_to_hire"), "time_to_hire_mean": ttl,
        "offer_gap": mean("offer_gap"), "accepted_gap": mean("accepted_gap"), "accepted_gap_mean": gap_all,
    })
