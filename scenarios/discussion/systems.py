"""The tick of the group discussion: one round in every room.

``pre``: :func:`start_clock`; :func:`notify_mentioned` files last tick's
mentions in the addressed agents' inboxes. ``update``:
:func:`poll_stance_before` (tick 0 only) polls every agent's first stance;
then, by mode, :func:`take_turns` (agent mode: one batched call per turn
across all rooms) or :func:`write_scripts` (script mode: one batched call
over the rooms, parsed back into utterances). ``post``:
:func:`poll_stance_after`, then :func:`record_round` (the round's measures
reduced over ranks, and its cost). Loops run over turns, never over agents
or rooms. Every call goes to the asker's model and adapter
(:func:`~socius.systems.model_choice`): an agent's in the polls and turns,
a room's (if it has a ``ModelChoice``) for a script.
"""
from __future__ import annotations

import time

import numpy as np

from socius.components import ModelChoice
from socius.ecs import STR, system
from socius.ecs.storage import find_rows
from socius.llm import LLM, DecisionStats, decide
from socius.mpi import bincount, global_max, int_sum, world_ranks
from socius.systems import model_choice

from . import measures, prompts
from .components import (LEVELS, DiscussionRuntime, DiscussionState, Inbox, Mention, Persona, Room, Seat, Stance,
                         Talk)
from .rooms import Rooms, send_mentions
from .transcript import clean, join_groups, mention_note, script_lines, tail

def _log(rt: DiscussionRuntime, tick: int, turn, room: np.ndarray, speaker: np.ndarray, text: np.ndarray) -> None:
    rt.utterances.append({"tick": np.full(room.shape[0], tick, np.int64), "turn": np.asarray(turn, np.int32),
                          "room": room.astype(np.int64), "speaker": speaker.astype(np.int64), "text": text})


def _add_talk(av, spoke: np.ndarray, words: np.ndarray, made: np.ndarray) -> None:
    t = av[Talk]
    av.set(Talk, utterances=t.utterances + spoke, words=t.words + words, round_utterances=spoke,
           round_mentions=made, mentions_made=t.mentions_made + made)


@system(phase="pre", resources=(DiscussionRuntime,))
def start_clock(ctx):
    ctx.resource(DiscussionRuntime).tick_start = time.perf_counter()


@system(phase="pre", reads=(Persona,), writes=(Inbox, Talk), receives=(Mention,))
def notify_mentioned(ctx):
    """The listener: last tick's mentions land in the addressed agents' inboxes (latest one kept)."""
    batch = ctx.read(Mention)
    v = ctx.query(Inbox, Talk)
    n = len(v)
    count = np.zeros(n, np.int32)
    who, said = np.full(n, "", STR), np.full(n, "", STR)
    got = np.zeros(0, np.int64)
    if len(batch):
        targets, offsets, order = batch.by_target()
        rows, here = find_rows(v.ids, targets)
        last = order[offsets[1:] - 1]                   # (tick, sender, seq) order: the last is the latest
        got = rows[here]
        count[got] = np.diff(offsets)[here]
        who[got] = batch.who[last][here]
        said[got] = batch.text[last][here]
    v.set(Inbox, count=count, who=who, said=said)      # every inbox: last tick's mentions or none
    v.set(Talk, rows=got, mentions_received=v[Talk].mentions_received[got] + count[got])


@system(phase="update", reads=(Persona, Seat, Room, ModelChoice), writes=(Stance,),
        resources=(DiscussionRuntime, LLM))
def poll_stance_before(ctx):
    """Tick 0: every agent's stance before any discussion (one batched call). First in ``update``, not in
    ``pre``: an adapter switch at tick 0 (phase ``pre``, its new ``ModelChoice`` rows applied at the
    phase's end) reaches it."""
    if ctx.tick != 0:
        return
    rv, av = ctx.query(Room), ctx.query(Persona, Seat, Stance)
    p = av[Persona]
    models, adapters = model_choice(ctx, av.ids)
    res = decide(ctx, ctx.resource(DiscussionRuntime).poll_first, av.ids, {
        "statement": rv[Room].statement[find_rows(rv.ids, av[Seat].room)[0]], "name": p.name, "age": p.age,
        "occupation": p.occupation, "leaning": p.leaning}, models=models, adapters=adapters)
    s = res.values["stance"].astype(np.int8)
    av.set(Stance, initial=s, before=s, value=s, outcome=res.outcome)


@system(phase="update", reads=(Persona, Seat, Stance, ModelChoice), writes=(Room, Talk, Inbox),
        resources=(DiscussionState, DiscussionRuntime, LLM), sends=(Mention,))
def take_turns(ctx):
    """Agent mode: ``turns`` turns; in each, the next speaker of every room speaks (one batched call)."""
    st, rt = ctx.resource(DiscussionState), ctx.resource(DiscussionRuntime)
    rv, av = ctx.query(Room), ctx.query(Persona, Seat, Stance, Talk, Inbox)
    rooms = Rooms(rv, av)
    r = rooms.ids.shape[0]
    if r == 0:
        return
    p = av[Persona]
    statement, members = rv[Room].statement, rv[Room].members
    view = prompts.view_text(av[Stance].value)
    inbox_note = mention_note(av[Inbox].who, av[Inbox].said)      # addressed last round
    pos = np.asarray(av[Seat].position, dtype=np.int64)
    transcript = np.full(r, "", STR)
    next_pos = ctx.tick % rooms.size                                # a different opener each round
    said_to = np.full(r, -1, np.int64)                              # agent row the last message addressed
    said_who, said_text = np.full(r, "", STR), np.full(r, "", STR)
    spoke = np.zeros(len(av), np.int32)
    words = np.zeros(len(av), np.int64)
    made = np.zeros(len(av), np.int32)
    models, adapters = model_choice(ctx, av.ids)                    # [a] or None
    for turn in range(st.turns):                                    # turns, not agents
        speaker = rooms.order[rooms.start[:-1] + next_pos]          # [r] agent rows
        now = np.where(said_to == speaker, mention_note(said_who, said_text), "")
        note = np.where(now != "", now, np.where(spoke[speaker] == 0, inbox_note[speaker], "")).astype(STR)
        shown = np.where(transcript == "", prompts.NOBODY_YET, tail(transcript, st.transcript_chars))
        res = decide(ctx, rt.speak[turn], av.ids[speaker], {
            "statement": statement, "members": members, "name": p.name[speaker], "age": p.age[speaker],
            "occupation": p.occupation[speaker], "view": view[speaker], "note": note, "transcript": shown},
            models=None if models is None else models[speaker],
            adapters=None if adapters is None else adapters[speaker])
        msg = clean(res.values["message"])
        line = np.strings.add(np.strings.add(p.name[speaker], ": "), msg)
        transcript = np.where(transcript == "", line, np.strings.add(np.strings.add(transcript, "\n"), line))
        target, valid = send_mentions(ctx, av, rooms, speaker, msg)
        next_pos = np.where(valid, pos[target], (next_pos + 1) % rooms.size)
        said_to = np.where(valid, target, -1)
        said_who, said_text = p.name[speaker], msg
        spoke[speaker] += 1
        words[speaker] += np.strings.count(msg, " ") + (np.strings.str_len(msg) > 0)
        made[speaker] += valid
        _log(rt, ctx.tick, np.full(r, turn), rooms.ids, av.ids[speaker], msg)
    rv.set(Room, transcript=transcript.astype(STR), lines=np.full(r, st.turns, np.int32))
    _add_talk(av, spoke, words, made)


@system(phase="update", reads=(Persona, Seat, Stance, ModelChoice), writes=(Room, Talk),
        resources=(DiscussionState, DiscussionRuntime, LLM), sends=(Mention,))
def write_scripts(ctx):
    """Script mode: one call per room writes the whole exchange; its lines become utterances per agent."""
    st, rt = ctx.resource(DiscussionState), ctx.resource(DiscussionRuntime)
    rv, av = ctx.query(Room), ctx.query(Persona, Seat, Stance, Talk)
    rooms = Rooms(rv, av)
    r = rooms.ids.shape[0]
    if r == 0:
        return
    p = av[Persona]
    o = rooms.order
    part = np.strings.add(np.strings.add(np.strings.add(np.strings.add(np.strings.add(
        np.strings.add("- ", p.name[o]), ", "), p.age[o].astype(STR)), ", "), p.occupation[o]), ", view ")
    part = np.strings.add(part, av[Stance].value[o].astype(STR))
    participants = join_groups(part, np.diff(rooms.start), "\n")
    opener = p.name[o[rooms.start[:-1] + ctx.tick % rooms.size]]    # a different opener each round
    models, adapters = model_choice(ctx, rv.ids)                     # a room's own choice, if it has one
    res = decide(ctx, rt.script, rv.ids, {"statement": rv[Room].statement, "participants": participants,
                                          "turns": st.turns, "opener": opener}, models=models, adapters=adapters)
    text = res.values["text"]                                        # continues the cue "Opener:"
    text = np.where(text != "", np.strings.add(np.strings.add(opener, ": "), text), "").astype(STR)
    room_of, ok, name, msg = script_lines(text)
    speaker, member = rooms.find(room_of, name)
    keep = ok & member
    rank = np.cumsum(keep) - 1                                       # keep the first `turns` lines per room
    first_kept = np.zeros(r, np.int64)
    kept_per_room = np.bincount(room_of[keep], minlength=r)
    first_kept[1:] = np.cumsum(kept_per_room)[:-1]
    keep &= (rank - first_kept[room_of]) < st.turns
    room_of, speaker, msg = room_of[keep], speaker[keep], msg[keep]
    lines = np.strings.add(np.strings.add(p.name[speaker], ": "), msg)
    counts = np.bincount(room_of, minlength=r)
    rv.set(Room, transcript=join_groups(lines, counts, "\n"), lines=counts.astype(np.int32))
    target, valid = send_mentions(ctx, av, rooms, speaker, msg)
    n = len(av)
    spoke = np.bincount(speaker, minlength=n).astype(np.int32)
    words = np.bincount(speaker, weights=np.strings.count(msg, " ") + (np.strings.str_len(msg) > 0),
                        minlength=n).astype(np.int64)
    made = np.bincount(speaker, weights=valid, minlength=n).astype(np.int32)
    turn = np.arange(room_of.shape[0]) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)
    _log(rt, ctx.tick, turn, rooms.ids[room_of], av.ids[speaker], msg)
    _add_talk(av, spoke, words, made)


@system(phase="post", reads=(Persona, Seat, Room, ModelChoice), writes=(Stance,),
        resources=(DiscussionState, DiscussionRuntime, LLM))
def poll_stance_after(ctx):
    """Every agent's stance after reading its room's discussion (one batched call)."""
    st, rt = ctx.resource(DiscussionState), ctx.resource(DiscussionRuntime)
    rv, av = ctx.query(Room), ctx.query(Persona, Seat, Stance)
    row = find_rows(rv.ids, av[Seat].room)[0]
    transcript = rv[Room].transcript[row]
    shown = np.where(transcript == "", "(nobody spoke)", tail(transcript, st.transcript_chars))
    p, old = av[Persona], av[Stance].value
    models, adapters = model_choice(ctx, av.ids)
    res = decide(ctx, rt.poll_after, av.ids, {
        "statement": rv[Room].statement[row], "name": p.name, "age": p.age, "occupation": p.occupation,
        "leaning": p.leaning, "previous": old, "transcript": shown}, models=models, adapters=adapters)
    new = res.values["stance"]
    s = np.where(new < 1, old, new).astype(np.int8)                  # a failed poll keeps the last stance
    av.set(Stance, before=old, value=s, outcome=res.outcome)


@system(phase="post", reads=(Stance, Talk, Room), resources=(DiscussionState, DiscussionRuntime, DecisionStats))
def record_round(ctx):
    """The round's measures (reduced over ranks) and its cost."""
    st, rt = ctx.resource(DiscussionState), ctx.resource(DiscussionRuntime)
    ranks = world_ranks(ctx)
    v = ctx.query(Stance, Talk)
    s, t = v[Stance], v[Talk]
    n = int_sum(ranks, np.array([len(v)]))
    hist = bincount(ranks, s.value.astype(np.int64) - 1, 5)
    m = measures.moments_from_levels(hist, LEVELS)
    top = int(global_max(ranks, t.utterances)) if n else 0
    talk_hist = bincount(ranks, t.utterances.astype(np.int64), top + 1)
    round_hist = bincount(ranks, t.round_utterances.astype(np.int64),
                          int(global_max(ranks, t.round_utterances)) + 1 if n else 1)
    value, before, initial = (s.value.astype(np.int64), s.before.astype(np.int64), s.initial.astype(np.int64))
    rooms = ctx.query(Room)
    outcome = s.outcome
    st.history.append({
        "round": ctx.tick + 1, "agents": n, "rooms": int_sum(ranks, np.array([len(rooms)])),
        "stance_mean": m["mean"], "stance_var": m["var"], "bimodality": measures.bimodality(hist, LEVELS),
        "extreme_share": float((hist[0] + hist[4]) / n) if n else float("nan"),
        **{f"stance_{k}": int(hist[k - 1]) for k in LEVELS},
        "shift_abs": int_sum(ranks, np.abs(value - before)) / n if n else float("nan"),
        "changed_share": int_sum(ranks, value != before) / n if n else float("nan"),
        "drift_from_initial": int_sum(ranks, value - initial) / n if n else float("nan"),
        "utterances": int_sum(ranks, t.round_utterances), "talk_gini": measures.gini_from_counts(talk_hist),
        "round_talk_gini": measures.gini_from_counts(round_hist),
        "silent_share": float(round_hist[0] / n) if n else float("nan"),
        "mentions": int_sum(ranks, t.round_mentions), "poll_fallbacks": int_sum(ranks, outcome >= 2),
    })
    stats = ctx.resource(DecisionStats).rows
    rows, rt.stats_seen = stats[rt.stats_seen:], len(stats)
    talk_rows = [r for r in rows if r["decision"].startswith(("speak", "script"))]  # this tick's talk calls
    cost = {"round": ctx.tick + 1}
    for prefix, rs in (("", rows), ("talk_", talk_rows)):
        cost[f"{prefix}calls"] = int(global_max(ranks, np.array([len(rs)])))
        for k in ("requests", "prompt_tokens", "output_tokens"):
            cost[f"{prefix}{k}"] = int_sum(ranks, np.array([r[k] for r in rs], np.int64))
        cost[f"{prefix}engine_s"] = float(sum(r["engine_s"] for r in rs))
    cost["wall_s"] = time.perf_counter() - rt.tick_start
    rt.cost.append(cost)
