"""Group discussion (GenSim §2.1): rooms of k agents talk about a statement, in agent or script mode.

Every room is a nested environment: a ``Room`` entity with its statement, its
members and this round's transcript; its members carry a ``Seat`` pointing at
it. One tick is one round of discussion in every room:

1. ``poll_stance_before`` (tick 0 only): every agent's stance on its room's
   statement, 1 (strongly disagree) … 5 (strongly agree), one batched call;
2. the discussion, by ``mode``:

   - **agent** (``take_turns``): ``turns`` turns; in each, the next speaker of
     *every* room speaks in the first person with its room's history — one
     batched ``decide`` per turn across all rooms. Next speaker: the one the
     last message addressed (``@Name``), else the next seat;
   - **script** (``write_scripts``): one call per room writes the whole
     exchange from a third-person view (``Name: message`` lines), parsed into
     utterances per agent — one batched ``decide`` over the rooms;

3. ``poll_stance_after``: every agent's stance after reading its room's
   discussion (one batched call);
4. ``record_round``: stance shift, polarisation (variance, bimodality, share at
   the extremes), talk share (Gini of utterances per agent), mentions, and the
   cost of the round (batched calls, requests, prompt/output tokens, engine and
   wall time), reduced over ranks.

Mentions notify: an ``@Name`` gives the addressed member the next turn (the
room's listener) and sends a ``Mention`` message to that agent, which
``notify_mentioned`` files in its ``Inbox`` next tick (shown in its next
prompt: "Maria addressed you: …").

MPI: a room and its members live on one rank (a group partition: rooms are
groups), so reading the room's row from a member is local; everything
between agents beyond the room goes through messages; global figures use
:mod:`socius.mpi` reductions.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from socius.ecs import Component, Message, Resource, Scalar, String, World, system
from socius.ecs.storage import find_rows
from socius.mpi import Ranks, bincount, global_max, group_partition, int_sum, world_ranks
from socius.app.report import gather_table, history_columns, is_lead, pyplot, write_table
from socius.llm import Decision, DecisionStats, decide
from socius.llm import Sampling
from socius.systems import Group, apply_interventions, ensure_environment, parse_interventions, schedule_interventions
from socius.population import parse_population, sample_population
from socius.llm import JsonReply, Number, Text, TextReply
from socius.llm import QUOTE_CLOSE, QUOTE_OPEN, Template, defuse

from . import measures, prompts
from .mock import LEANINGS, discussion_policy

STR = np.dtypes.StringDType()
MODES = ("agent", "script")
LEVELS = np.arange(1, 6)

NAMES = ("Maria", "Wei", "Tom", "Aiko", "Carlos", "Olga", "Kwame", "Priya", "Lena", "Omar", "Sofia", "Ivan",
         "Mei", "John", "Fatima", "Alex", "Nadia", "Pedro", "Yuki", "Hassan", "Emma", "Ravi", "Chloe", "Jonas",
         "Amara", "Diego", "Hana", "Luca", "Zara", "Felix", "Ines", "Kofi")

DEFAULT_TOPICS = ["Remote work should become the default for office jobs.",
                  "Cities should ban private cars from their centres.",
                  "Social media does more harm than good."]

DEFAULT_POPULATION = {
    "age": {"dist": "normal", "mean": 40, "std": 13, "low": 18, "high": 80, "dtype": "int"},
    "occupation": {"dist": "categorical", "values": ["teacher", "nurse", "engineer", "shop assistant", "student",
                                                     "farmer", "accountant", "artist", "retired", "driver"]},
    "leaning": {"dist": "categorical", "values": list(LEANINGS), "weights": [0.15, 0.2, 0.3, 0.2, 0.15]},
}


# ------------------------------------------------------------------------------------------ schemas
class Persona(Component):
    """Who an agent is, as its prompts show it (names are unique within a room)."""

    name = String()
    age = Scalar(np.int32)
    occupation = String()
    leaning = String()


class Seat(Component):
    """The agent's room (entity ID), room number and seat in it."""

    room = Scalar(np.int64, default=-1)
    index = Scalar(np.int32, default=-1)
    position = Scalar(np.int32)


class Stance(Component):
    """Stance on the room's statement, 1..5: first poll, before this round, now; and how the reply came."""

    initial = Scalar(np.int8, default=3)
    before = Scalar(np.int8, default=3)
    value = Scalar(np.int8, default=3)
    outcome = Scalar(np.int8)


class Talk(Component):
    """Utterances and words so far, utterances this round, mentions made and received."""

    utterances = Scalar(np.int32)
    words = Scalar(np.int64)
    round_utterances = Scalar(np.int32)
    round_mentions = Scalar(np.int32)
    mentions_made = Scalar(np.int32)
    mentions_received = Scalar(np.int32)


class Inbox(Component):
    """Mentions that reached the agent last tick (the latest one's author and text)."""

    count = Scalar(np.int32)
    who = String()
    said = String()


class Room(Component):
    """One room: a nested environment with its statement, members and this round's transcript."""

    index = Scalar(np.int32)
    statement = String()
    members = String()
    size = Scalar(np.int32)
    transcript = String()
    lines = Scalar(np.int32)


class Mention(Message):
    """``@Name`` in a message: sent to the addressed agent, filed in its Inbox next tick."""

    room = Scalar(np.int64)
    who = String()
    text = String()


# ------------------------------------------------------------------------------------------ config
@dataclass
class DiscussionConfig:
    """Options of ``socius run discussion`` (also a ``--config`` TOML/JSON table); see the README."""

    agents: int = 60
    room_size: int = 4                  # k; the last room takes the remainder (k .. 2k-1 members)
    mode: str = "agent"                 # agent | script
    turns: int = 8                      # messages per room and round, in both modes
    topics: list[str] = field(default_factory=lambda: list(DEFAULT_TOPICS))  # room r discusses topics[r % len]
    temperature: float = 0.7            # discussion messages / scripts
    poll_temperature: float = 0.0       # stance polls
    max_tokens: int = 80                # per message (agent mode); a script gets turns × this
    transcript_chars: int = 2400        # the last N characters of a transcript go into prompts
    population: dict = field(default_factory=dict)  # per-attribute distributions (override the defaults)
    interventions: list = field(default_factory=list)  # [[interventions]] tables: tick, set, value, where/ids

    def validate(self) -> None:
        parse_interventions(self.interventions)   # raises ConfigError naming interventions[i].<field>
        if self.mode not in MODES:
            raise ValueError(f"mode: must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 2 <= self.room_size <= 16:
            raise ValueError(f"room_size: must be in 2..16, got {self.room_size}")
        if self.agents < self.room_size:
            raise ValueError(f"agents: must be >= room_size ({self.room_size}), got {self.agents}")
        if not 1 <= self.turns <= 64:
            raise ValueError(f"turns: must be in 1..64, got {self.turns}")
        if not self.topics or any(not isinstance(t, str) or not t.strip() or "\n" in t for t in self.topics):
            raise ValueError("topics: must be a non-empty list of one-line statements")
        if self.temperature < 0 or self.poll_temperature < 0:
            raise ValueError("temperature: must be >= 0" if self.temperature < 0 else
                             "poll_temperature: must be >= 0")
        if self.max_tokens < 8:
            raise ValueError(f"max_tokens: must be >= 8, got {self.max_tokens}")
        if self.transcript_chars < 100:
            raise ValueError(f"transcript_chars: must be >= 100, got {self.transcript_chars}")
        self.population_specs()

    def population_specs(self) -> dict:
        specs = parse_population({**DEFAULT_POPULATION, **self.population})
        missing = {"age", "occupation", "leaning"} - set(specs)
        if missing:
            raise ValueError(f"population: the discussion needs attributes {sorted(missing)}")
        return specs

    @property
    def rooms(self) -> int:
        return self.agents // self.room_size


class DiscussionState(Resource):
    """Mode, turns and the per-round history of the deterministic measures (saved in snapshots)."""

    mode: str = "agent"
    turns: int = 8
    transcript_chars: int = 2400
    history: list = field(default_factory=list)


@dataclass
class DiscussionRuntime:
    """Decisions (``speak[t]`` for turn ``t``: the response log keeps one file per decision and tick),
    per-round cost rows, the tick clock and the utterance log (a plain resource: not saved; cost and
    wall time vary between runs and machines, so they stay out of the state hash)."""

    speak: list
    script: Decision
    poll_first: Decision
    poll_after: Decision
    cost: list = field(default_factory=list)
    utterances: list = field(default_factory=list)   # per tick: dict of columns
    tick_start: float = 0.0
    stats_seen: int = 0


def make_decisions(cfg: DiscussionConfig) -> dict:
    talk = Sampling(temperature=cfg.temperature, max_tokens=cfg.max_tokens, stop=("\n",))
    poll = Sampling(temperature=cfg.poll_temperature, max_tokens=12, stop=("\n",))
    stance = JsonReply(stance=Number(1, 5, integer=True))
    return {
        "speak": [Decision(f"speak{t:02d}", Template(prompts.SPEAK, untrusted=("transcript",)),
                           JsonReply(message=Text()), fallback={"message": "I have nothing to add."}, sampling=talk)
                  for t in range(cfg.turns)],
        "script": Decision("script", Template(prompts.SCRIPT), TextReply(), fallback={"text": ""},
                           sampling=Sampling(temperature=cfg.temperature, max_tokens=cfg.max_tokens * cfg.turns,
                                             stop=("\n\n", "\n#")), extract=None),
        "poll_first": Decision("poll_first", Template(prompts.POLL_FIRST), stance, fallback={"stance": 3},
                               sampling=poll),
        "poll_after": Decision("poll_after", Template(prompts.POLL_AFTER, untrusted=("transcript",)), stance,
                               fallback={"stance": -1}, sampling=poll),
    }


# ------------------------------------------------------------------------------------------ helpers
def _A(x) -> pa.Array:
    return pa.array(np.asarray(x, dtype=STR), type=pa.large_string())


def _np(a) -> np.ndarray:
    return np.asarray(a.to_numpy(zero_copy_only=False)).astype(STR)


def _join_groups(values: np.ndarray, counts: np.ndarray, sep: str) -> np.ndarray:
    """``[g]``: the ``values`` (grouped consecutively, ``counts[j]`` in group ``j``) joined with ``sep``."""
    offsets = np.zeros(counts.shape[0] + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    lists = pa.ListArray.from_arrays(pa.array(offsets), _A(values))
    return _np(pc.binary_join(lists, pa.scalar(sep, pa.large_string())))


def _tail(text: np.ndarray, chars: int) -> np.ndarray:
    """The last ``chars`` characters of each text (a cut transcript starts with "…")."""
    cut = np.strings.str_len(text) > chars
    tail = _np(pc.utf8_slice_codeunits(_A(text), start=-chars))
    return np.where(cut, np.strings.add("…", tail), text).astype(STR)


def _clean(msg: np.ndarray, limit: int = 400) -> np.ndarray:
    """One line, stripped, at most ``limit`` characters."""
    one = np.strings.strip(np.strings.replace(np.strings.replace(msg, "\r", " "), "\n", " "))
    return np.strings.slice(one, 0, limit).astype(STR)


def _first_mention(msg: np.ndarray) -> np.ndarray:
    found = pc.extract_regex(_A(msg), pattern=r"@(?P<v>[A-Z][A-Za-z'-]*)")
    return _np(pc.if_else(found.is_valid(), found.field("v"), ""))


def _member_lookup(room_row: np.ndarray, names: np.ndarray):
    """``find(room_rows, names) -> (agent rows, found)``: a member of a room by name."""
    keys = np.strings.add(np.strings.add(room_row.astype(STR), "|"), names)
    value_set = _A(keys)

    def find(rr: np.ndarray, nm: np.ndarray):
        q = np.strings.add(np.strings.add(rr.astype(STR), "|"), nm)
        idx = pc.index_in(_A(q), value_set=value_set)
        found = np.asarray(idx.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        return np.asarray(idx.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64), found

    return find


def _quoted(text: np.ndarray) -> np.ndarray:
    return np.strings.add(np.strings.add(QUOTE_OPEN, _np(defuse(_A(text)))), QUOTE_CLOSE).astype(STR)


def _mention_note(who: np.ndarray, said: np.ndarray) -> np.ndarray:
    note = np.strings.add(np.strings.add(np.strings.add(" ", who), " addressed you: "), _quoted(said))
    return np.where(who != "", note, "").astype(STR)


class _Rooms:
    """This tick's rooms and their members grouped by room in seat order (all on this rank)."""

    def __init__(self, rv, av):
        self.ids = rv.ids
        self.size = np.asarray(rv[Room].size, dtype=np.int64)
        self.row = find_rows(rv.ids, av[Seat].room)[0]                # [n] room row of each agent
        self.order = np.lexsort((av[Seat].position, self.row))        # agents by (room, seat)
        self.start = np.zeros(self.ids.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(self.row, minlength=self.ids.shape[0]), out=self.start[1:])
        self.find = _member_lookup(self.row, av[Persona].name)


def _apply_mentions(ctx, av, rooms: _Rooms, speaker: np.ndarray, msg: np.ndarray):
    """Mentions in ``msg`` (said by agent rows ``speaker``): Mention messages; returns (target rows, valid)."""
    name = av[Persona].name
    target, found = rooms.find(rooms.row[speaker], _first_mention(msg))
    valid = found & (target != speaker)
    if valid.any():
        s, t = speaker[valid], target[valid]
        ctx.send(Mention, sender=av.ids[s], target=av.ids[t], room=rooms.ids[rooms.row[s]], who=name[s],
                 text=msg[valid])
    return target, valid


def _log(rt: DiscussionRuntime, tick: int, turn, room: np.ndarray, speaker: np.ndarray, text: np.ndarray) -> None:
    rt.utterances.append({"tick": np.full(room.shape[0], tick, np.int64), "turn": np.asarray(turn, np.int32),
                          "room": room.astype(np.int64), "speaker": speaker.astype(np.int64), "text": text})


# ------------------------------------------------------------------------------------------ systems
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
    if len(batch):
        targets, offsets, order = batch.by_target()
        rows, here = find_rows(v.ids, targets)
        last = order[offsets[1:] - 1]                   # (tick, sender, seq) order: the last is the latest
        count[rows[here]] = np.diff(offsets)[here]
        who[rows[here]] = batch.who[last][here]
        said[rows[here]] = batch.text[last][here]
    v.set(Inbox, count=count, who=who, said=said)
    v.set(Talk, mentions_received=v[Talk].mentions_received + count)


@system(phase="pre", reads=(Persona, Seat, Room), writes=(Stance,), resources=(DiscussionRuntime,))
def poll_stance_before(ctx):
    """Tick 0: every agent's stance before any discussion (one batched call)."""
    if ctx.tick != 0:
        return
    rv, av = ctx.query(Room), ctx.query(Persona, Seat, Stance)
    p = av[Persona]
    res = decide(ctx.world, ctx.resource(DiscussionRuntime).poll_first, av.ids, {
        "statement": rv[Room].statement[find_rows(rv.ids, av[Seat].room)[0]], "name": p.name, "age": p.age,
        "occupation": p.occupation, "leaning": p.leaning})
    s = res.values["stance"].astype(np.int8)
    av.set(Stance, initial=s, before=s, value=s, outcome=res.outcome)


@system(phase="update", reads=(Persona, Seat, Stance), writes=(Room, Talk, Inbox),
        resources=(DiscussionState, DiscussionRuntime), sends=(Mention,))
def take_turns(ctx):
    """Agent mode: ``turns`` turns; in each, the next speaker of every room speaks (one batched call)."""
    st, rt = ctx.resource(DiscussionState), ctx.resource(DiscussionRuntime)
    rv, av = ctx.query(Room), ctx.query(Persona, Seat, Stance, Talk, Inbox)
    rooms = _Rooms(rv, av)
    r = rooms.ids.shape[0]
    if r == 0:
        return
    p = av[Persona]
    statement, members = rv[Room].statement, rv[Room].members
    view = prompts.view_text(av[Stance].value)
    inbox_note = _mention_note(av[Inbox].who, av[Inbox].said)     # addressed last round
    transcript = np.full(r, "", STR)
    next_pos = ctx.tick % rooms.size                                # a different opener each round
    said_to = np.full(r, -1, np.int64)                              # agent row the last message addressed
    said_who, said_text = np.full(r, "", STR), np.full(r, "", STR)
    spoke = np.zeros(len(av), np.int32)
    words = np.zeros(len(av), np.int64)
    made = np.zeros(len(av), np.int32)
    for turn in range(st.turns):                                    # turns, not agents
        speaker = rooms.order[rooms.start[:-1] + next_pos]          # [r] agent rows
        now = np.where(said_to == speaker, _mention_note(said_who, said_text), "")
        note = np.where(now != "", now, np.where(spoke[speaker] == 0, inbox_note[speaker], "")).astype(STR)
        shown = np.where(transcript == "", prompts.NOBODY_YET, _tail(transcript, st.transcript_chars))
        res = decide(ctx.world, rt.speak[turn], av.ids[speaker], {
            "statement": statement, "members": members, "name": p.name[speaker], "age": p.age[speaker],
            "occupation": p.occupation[speaker], "view": view[speaker], "note": note, "transcript": shown})
        msg = _clean(res.values["message"])
        line = np.strings.add(np.strings.add(p.name[speaker], ": "), msg)
        transcript = np.where(transcript == "", line, np.strings.add(np.strings.add(transcript, "\n"), line))
        target, valid = _apply_mentions(ctx, av, rooms, speaker, msg)
        pos = np.asarray(av[Seat].position, dtype=np.int64)
        next_pos = np.where(valid, pos[target], (next_pos + 1) % rooms.size)
        said_to = np.where(valid, target, -1)
        said_who, said_text = p.name[speaker], msg
        spoke[speaker] += 1
        words[speaker] += np.strings.count(msg, " ") + (np.strings.str_len(msg) > 0)
        made[speaker] += valid
        _log(rt, ctx.tick, np.full(r, turn), rooms.ids, av.ids[speaker], msg)
    rv.set(Room, transcript=transcript.astype(STR), lines=np.full(r, st.turns, np.int32))
    t = av[Talk]
    av.set(Talk, utterances=t.utterances + spoke, words=t.words + words, round_utterances=spoke,
           round_mentions=made, mentions_made=t.mentions_made + made)


@system(phase="update", reads=(Persona, Seat, Stance), writes=(Room, Talk),
        resources=(DiscussionState, DiscussionRuntime), sends=(Mention,))
def write_scripts(ctx):
    """Script mode: one call per room writes the whole exchange; its lines become utterances per agent."""
    st, rt = ctx.resource(DiscussionState), ctx.resource(DiscussionRuntime)
    rv, av = ctx.query(Room), ctx.query(Persona, Seat, Stance, Talk)
    rooms = _Rooms(rv, av)
    r = rooms.ids.shape[0]
    if r == 0:
        return
    p = av[Persona]
    o = rooms.order
    part = np.strings.add(np.strings.add(np.strings.add(np.strings.add(np.strings.add(
        np.strings.add("- ", p.name[o]), ", "), p.age[o].astype(STR)), ", "), p.occupation[o]), ", view ")
    part = np.strings.add(part, av[Stance].value[o].astype(STR))
    participants = _join_groups(part, np.diff(rooms.start), "\n")
    opener = p.name[o[rooms.start[:-1] + ctx.tick % rooms.size]]    # a different opener each round
    res = decide(ctx.world, rt.script, rv.ids, {"statement": rv[Room].statement, "participants": participants,
                                                "turns": st.turns, "opener": opener})
    text = res.values["text"]                                        # continues the cue "Opener:"
    text = np.where(text != "", np.strings.add(np.strings.add(opener, ": "), text), "").astype(STR)
    lists = pc.split_pattern(_A(text), pattern="\n")
    room_of = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    found = pc.extract_regex(lists.flatten(), pattern=r"^\s*(?P<name>[A-Z][A-Za-z'-]*)\s*:\s*(?P<msg>\S.*)$")
    ok = np.asarray(found.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    name = _np(pc.if_else(found.is_valid(), found.field("name"), ""))
    msg = _clean(_np(pc.if_else(found.is_valid(), found.field("msg"), "")))
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
    rv.set(Room, transcript=_join_groups(lines, counts, "\n"), lines=counts.astype(np.int32))
    target, valid = _apply_mentions(ctx, av, rooms, speaker, msg)
    n = len(av)
    spoke = np.bincount(speaker, minlength=n).astype(np.int32)
    words = np.bincount(speaker, weights=np.strings.count(msg, " ") + (np.strings.str_len(msg) > 0),
                        minlength=n).astype(np.int64)
    made = np.bincount(speaker, weights=valid, minlength=n).astype(np.int32)
    turn = np.arange(room_of.shape[0]) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)
    _log(rt, ctx.tick, turn, rooms.ids[room_of], av.ids[speaker], msg)
    t = av[Talk]
    av.set(Talk, utterances=t.utterances + spoke, words=t.words + words, round_utterances=spoke,
           round_mentions=made, mentions_made=t.mentions_made + made)


@system(phase="post", reads=(Persona, Seat, Room), writes=(Stance,), resources=(DiscussionState, DiscussionRuntime))
def poll_stance_after(ctx):
    """Every agent's stance after reading its room's discussion (one batched call)."""
    st, rt = ctx.resource(DiscussionState), ctx.resource(DiscussionRuntime)
    rv, av = ctx.query(Room), ctx.query(Persona, Seat, Stance)
    row = find_rows(rv.ids, av[Seat].room)[0]
    transcript = rv[Room].transcript[row]
    shown = np.where(transcript == "", "(nobody spoke)", _tail(transcript, st.transcript_chars))
    p, old = av[Persona], av[Stance].value
    res = decide(ctx.world, rt.poll_after, av.ids, {
        "statement": rv[Room].statement[row], "name": p.name, "age": p.age, "occupation": p.occupation,
        "leaning": p.leaning, "previous": old, "transcript": shown})
    new = res.values["stance"]
    s = np.where(new < 1, old, new).astype(np.int8)                  # a failed poll keeps the last stance
    av.set(Stance, before=old, value=s, outcome=res.outcome)


@system(phase="post", reads=(Stance, Talk, Room), resources=(DiscussionState, DiscussionRuntime, DecisionStats))
def record_round(ctx):
    """The round's measures (reduced over ranks) and its cost."""
    st, rt = ctx.resource(DiscussionState), ctx.resource(DiscussionRuntime)
    ranks = world_ranks(ctx.world)
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


# ------------------------------------------------------------------------------------------ build
def build(world: World, cfg: DiscussionConfig) -> None:
    """Rooms (one group each) and their members on this rank; decisions; the systems of the mode."""
    cfg.validate()
    k, n_rooms = cfg.room_size, cfg.rooms
    agent_ids = np.arange(cfg.agents, dtype=np.int64)
    room_index = np.minimum(agent_ids // k, n_rooms - 1)            # the last room takes the remainder
    room_ids = cfg.agents + np.arange(n_rooms, dtype=np.int64)
    position = (agent_ids - room_index * k).astype(np.int32)
    names = np.array(NAMES, dtype=STR)[(room_index * 5 + position) % len(NAMES)]  # unique within a room
    # every rank computes the same group partition: a room and its members on one rank
    ranks = world_ranks(world)
    held = world.resource(Ranks)
    if held.partition is None:
        held.partition = group_partition(np.r_[agent_ids, room_ids], np.r_[room_index, np.arange(n_rooms)],
                                         ranks.size)
    mine_a = held.partition.owner_of(agent_ids) == ranks.rank
    mine_r = held.partition.owner_of(room_ids) == ranks.rank
    sizes = np.bincount(room_index, minlength=n_rooms)
    members = _join_groups(names, sizes, ", ")
    topics = np.array(cfg.topics, dtype=STR)
    decisions = make_decisions(cfg)
    world.insert_resource(DiscussionState(mode=cfg.mode, turns=cfg.turns, transcript_chars=cfg.transcript_chars))
    world.insert_resource(DiscussionRuntime(**decisions))
    if world.get_resource(DecisionStats) is None:
        world.insert_resource(DecisionStats())
    r_ids = room_ids[mine_r]
    r_idx = np.arange(n_rooms)[mine_r]
    world.spawn(r_ids.shape[0], {Room: {"index": r_idx.astype(np.int32), "statement": topics[r_idx % len(topics)],
                                        "members": members[r_idx], "size": sizes[r_idx].astype(np.int32)}},
                ids=r_ids)
    a_ids = agent_ids[mine_a]
    cols = sample_population(cfg.population_specs(), a_ids, world.seed)
    world.spawn(a_ids.shape[0], {
        Persona: {"name": names[mine_a], "age": cols["age"].astype(np.int32),
                  "occupation": cols["occupation"].astype(STR), "leaning": cols["leaning"].astype(STR)},
        Seat: {"room": room_ids[room_index[mine_a]], "index": room_index[mine_a].astype(np.int32),
               "position": position[mine_a]},
        Group: {"group": room_index[mine_a]}, Stance: {}, Talk: {}, Inbox: {}}, ids=a_ids)
    ensure_environment(world)
    schedule_interventions(world, cfg.interventions)
    world.add_systems(start_clock, apply_interventions, notify_mentioned, poll_stance_before,
                      take_turns if cfg.mode == "agent" else write_scripts, poll_stance_after, record_round)


# ------------------------------------------------------------------------------------------ output
def metrics(world: World) -> dict:
    """Per round: the measures and (where this process ran the round) its cost; NaN for resumed rounds."""
    h = world.resource(DiscussionState).history
    cols = history_columns(h)
    if not cols:
        return {}
    cost = {c["round"]: c for c in world.resource(DiscussionRuntime).cost}
    keys = next(iter(cost.values())).keys() if cost else ()
    for k in keys:
        if k != "round":
            cols[k] = np.array([cost[r["round"]][k] if r["round"] in cost else np.nan for r in h], dtype=np.float64)
    return cols


def report(world: World, out: Path) -> None:
    """``utterances.parquet``, ``stances.parquet`` and ``discussion_rounds.png`` (needs matplotlib)."""
    rt = world.resource(DiscussionRuntime)
    schema = pa.schema([("tick", pa.int64()), ("turn", pa.int32()), ("room", pa.int64()), ("speaker", pa.int64()),
                        ("text", pa.large_string())])
    cols = {k: np.concatenate([u[k] for u in rt.utterances]) for k in rt.utterances[0]} if rt.utterances else \
        {f.name: np.zeros(0, np.int64 if f.name != "turn" else np.int32) for f in schema if f.name != "text"}
    cols["text"] = _A(cols["text"]) if rt.utterances else pa.array([], pa.large_string())
    # every rank's rooms (a room lives on one rank), written by rank 0
    table = pa.table({f.name: pa.array(cols[f.name]).cast(f.type) for f in schema}, schema=schema)
    write_table(gather_table(world, table, ["tick", "room", "turn", "speaker"]), out / "utterances.parquet")
    v = world.query(Stance, Talk, Seat)
    write_table(gather_table(world, pa.table({"id": v.ids.copy(), "room": v[Seat].index, "initial": v[Stance].initial,
                                              "final": v[Stance].value, "utterances": v[Talk].utterances,
                                              "mentions_received": v[Talk].mentions_received}), ["id"]),
                out / "stances.parquet")
    h = world.resource(DiscussionState).history
    if not h or not is_lead(world):
        return
    plt = pyplot()
    if plt is None:
        return
    cols = metrics(world)
    rounds = cols["round"]
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(15, 4))
    shares = np.stack([cols[f"stance_{k}"] for k in LEVELS]) / np.maximum(cols["agents"], 1)
    bottom = np.zeros(rounds.shape[0])
    for k in LEVELS:
        ax.bar(rounds, shares[k - 1], bottom=bottom, label=prompts.LEVELS[k - 1],
               color=plt.get_cmap("RdYlGn")((k - 1) / 4))
        bottom += shares[k - 1]
    ax.set_xlabel("round")
    ax.set_ylabel("share of agents")
    ax.set_title(f"Stance after each round ({world.resource(DiscussionState).mode} mode)")
    ax.legend(fontsize=7)
    bx.plot(rounds, cols["stance_var"], "o-", label="stance variance")
    bx.plot(rounds, cols["bimodality"], "s-", label="bimodality coefficient")
    bx.axhline(measures.BIMODAL_THRESHOLD, color="grey", ls=":", lw=1)
    bx.plot(rounds, cols["talk_gini"], "^-", label="talk Gini (cumulative)")
    bx.plot(rounds, cols["shift_abs"], "d--", label="mean |stance shift|")
    bx.set_xlabel("round")
    bx.set_title("Polarisation, talk share, shift")
    bx.legend(fontsize=7)
    if "requests" in cols:
        cx.bar(rounds - 0.2, cols["talk_requests"], width=0.4, label="discussion requests")
        cx.bar(rounds + 0.2, cols["requests"] - cols["talk_requests"], width=0.4, label="poll requests")
        cx2 = cx.twinx()
        cx2.plot(rounds, cols["prompt_tokens"] + cols["output_tokens"], "k.-", label="tokens")
        cx2.set_ylabel("tokens (prompt + output)")
        cx.set_xlabel("round")
        cx.set_ylabel("LLM requests")
        cx.set_title("Cost per round")
        cx.legend(fontsize=7, loc="upper left")
    for a in (ax, bx, cx):
        a.set_xticks(rounds)
    fig.tight_layout()
    fig.savefig(out / "discussion_rounds.png", dpi=110)
    plt.close(fig)


def _scenario():
    from socius.app.registry import Scenario
    return Scenario(name="discussion", summary="Group discussion in rooms (GenSim §2.1), agent or script mode",
                    config=DiscussionConfig, build=build, metrics=metrics, unit="rounds",
                    mock_policy=lambda cfg: discussion_policy(), report=report)


SCENARIO = _scenario()
