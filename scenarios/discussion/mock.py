"""The mock engine's policy for the group discussion: plausible dynamics without an LLM.

It reads each prompt as a model would (vectorised regexes over the batch) and
answers every kind of request the scenario makes:

- **first poll**: the stance that fits the agent's leaning (``sceptical`` → 2,
  …), moved one step with probability 0.2;
- **turn** (agent mode): a first-person message that opens with the phrase of
  the agent's view (``I agree``, ``I strongly disagree``, …) and an argument;
  with probability 0.35 it addresses another participant as ``@Name`` (half
  the time the one who addressed it);
- **script** (script mode): ``turns`` lines ``Name: message`` by the listed
  participants, talkative ones more often, with the same phrases and mentions;
- **poll after the discussion**: bounded confidence with backfire — the
  agent reads the views voiced in its room's transcript (their mean ``m``);
  within 1.5 levels of its own view ``x`` it moves half-way towards ``m``,
  farther away it moves 0.4 levels *away* from ``m``; plus noise and
  stochastic rounding. Moderates converge, far-apart agents drift to the
  ends: polarisation can grow while rooms agree more within;
- **extraction** calls: the number or the text read out of the quoted reply.

A small share (3 %) of turn replies comes back as prose without JSON so the
extraction path runs. Every draw is keyed by (seed, entity, tick).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs.rng import EntityRng
from socius.ecs import STR
from socius.llm import RequestBatch

PHRASES = ("I strongly disagree", "I disagree", "I am undecided", "I agree", "I strongly agree")
ARGUMENTS = (("the costs are far higher than anyone admits", "it would hurt the people who can least afford it",
              "we tried something like this before and it failed"),
             ("the evidence for it is thin", "there are simpler ways to get the same result",
              "it sounds good but the details worry me"),
             ("I can see arguments on both sides", "I would like to hear more before I decide",
              "it depends on how it is done"),
             ("the benefits clearly outweigh the costs", "most people I know would be better off",
              "it has worked well elsewhere"),
             ("it is long overdue and we should act now", "the case for it is overwhelming",
              "anyone who looks at the facts will come to the same view"))
LEANINGS = ("strongly opposed", "sceptical", "undecided", "sympathetic", "strongly in favour")
PROSE_SHARE = 0.03
MENTION_SHARE = 0.35


def _A(x) -> pa.Array:
    return pa.array(np.asarray(x, dtype=STR), type=pa.large_string())


def _extract(texts: np.ndarray, pattern: str, default: str = "") -> np.ndarray:
    found = pc.extract_regex(_A(texts), pattern=pattern)
    return pc.if_else(found.is_valid(), found.field("v"), default).to_numpy(zero_copy_only=False).astype(STR)


def _int_in(texts: np.ndarray, pattern: str, default: int) -> np.ndarray:
    v = _extract(texts, pattern, str(default))
    return v.astype(np.int64)


def _split(texts: np.ndarray, sep: str) -> tuple[np.ndarray, np.ndarray]:
    """Each text split at ``sep``: ``(flat [m] StringDType, offsets [n+1] int64)``."""
    lists = pc.split_pattern(_A(texts), pattern=sep)
    return (lists.flatten().to_numpy(zero_copy_only=False).astype(STR),
            lists.offsets.to_numpy().astype(np.int64))


def _phrase(level: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``I agree, it has worked well elsewhere`` for levels 1..5 and a uniform draw per row."""
    lv = np.clip(level, 1, 5) - 1
    args = np.array(ARGUMENTS, dtype=STR)  # [5, 3]
    k = np.minimum((u * args.shape[1]).astype(np.int64), args.shape[1] - 1)
    return np.strings.add(np.strings.add(np.array(PHRASES, dtype=STR)[lv], ", "), args[lv, k])


def _pick_other(names: np.ndarray, offsets: np.ndarray, rows: np.ndarray, own: np.ndarray, u: np.ndarray):
    """For each row, a name from ``names[offsets[rows]:offsets[rows+1]]`` other than ``own`` ("" if none)."""
    size = offsets[rows + 1] - offsets[rows]
    j = np.minimum((u * np.maximum(size, 1)).astype(np.int64), np.maximum(size - 1, 0))
    pick = names[np.minimum(offsets[rows] + j, max(names.shape[0] - 1, 0))] if names.shape[0] else \
        np.full(rows.shape[0], "", STR)
    alt = names[np.minimum(offsets[rows] + (j + 1) % np.maximum(size, 1), max(names.shape[0] - 1, 0))] \
        if names.shape[0] else pick
    out = np.where(pick == own, alt, pick)
    return np.where((size >= 2) & (out != own), out, "").astype(STR)


def _polls(req: np.ndarray, first: np.ndarray, u: np.ndarray) -> np.ndarray:
    leaning = _extract(req, r"on this topic you are (?P<v>[^.\n]+)\.")
    base = np.asarray(pc.index_in(_A(leaning), value_set=_A(np.array(LEANINGS, dtype=STR)))
                      .fill_null(2).to_numpy(zero_copy_only=False), dtype=np.int64) + 1
    start = base + np.where(u[:, 0] < 0.1, -1, np.where(u[:, 0] > 0.9, 1, 0))
    prev = _int_in(req, r"Your view before the discussion: (?P<v>[1-5]) of 5", 3).astype(np.float64)
    quote = _extract(req, r"(?s)The discussion in your group:\n<<<quote>>>(?P<v>.*)<<<end quote>>>")
    counts = np.stack([pc.count_substring(_A(quote), pattern=p).to_numpy(zero_copy_only=False)
                       for p in PHRASES], axis=1).astype(np.float64)            # [c, 5]
    heard = counts.sum(axis=1)
    m = np.where(heard > 0, (counts * np.arange(1, 6)).sum(axis=1) / np.maximum(heard, 1), prev)
    d = m - prev
    moved = np.where(np.abs(d) <= 1.5, prev + 0.5 * d, prev - 0.4 * np.sign(d)) + (u[:, 1] - 0.5) * 0.5
    after = np.floor(moved + u[:, 2])                                            # stochastic rounding
    stance = np.clip(np.where(first, start, after), 1, 5).astype(np.int64)
    return np.strings.add(np.strings.add(' {"stance": ', stance.astype(STR)), "}")


def _turns(req: np.ndarray, ents: np.ndarray, seed: int, tick: int) -> np.ndarray:
    # an agent may speak several times in a tick: its draws are keyed by the turn's prompt length as well
    key = ents * 1_000_003 + np.strings.str_len(req).astype(np.int64)
    u = EntityRng(seed, "mock:discussion:turn", tick).random(key, 5)
    view = _int_in(req, r"Your view on the statement: (?P<v>[1-5]) of 5", 3)
    own = _extract(req, r"\nYou are (?P<v>[^,\n]+),")
    names, offsets = _split(_extract(req, r"Participants: (?P<v>[^\n]+)"), ", ")
    rows = np.arange(req.shape[0])
    other = _pick_other(names, offsets, rows, own, u[:, 1])
    addressed_by = _extract(req, r"\. (?P<v>[^ .\n]+) addressed you:")
    target = np.where((addressed_by != "") & (u[:, 4] < 0.5), addressed_by, other)   # half answer back
    mention = (u[:, 2] < MENTION_SHARE) & (target != "") & (target != own)
    text = _phrase(view, u[:, 0])
    text = np.where(mention, np.strings.add(np.strings.add(np.strings.add(text, ". What do you think, @"), target),
                                            "?"), np.strings.add(text, "."))
    json_reply = np.strings.add(np.strings.add(' {"message": "', text), '"}')
    return np.where(u[:, 3] < PROSE_SHARE, np.strings.add(" Well, ", text), json_reply).astype(STR)


def _scripts(req: np.ndarray, entities: np.ndarray, seed: int, tick: int) -> np.ndarray:
    block = _extract(req, r"(?s)view from 1 = strongly disagree to 5 = strongly agree\):\n(?P<v>.*?)\n\n")
    lines, offsets = _split(block, "\n")
    name = _extract(lines, r"^- (?P<v>[^,]+),")
    view = _int_in(lines, r", view (?P<v>[1-5])$", 3)
    turns = _int_in(req, r"Write exactly (?P<v>\d+) lines", 0)
    opener = _extract(req, r"Discussion:\n(?P<v>[^:\n]+):$")        # the prompt ends with the first speaker
    size = offsets[1:] - offsets[:-1]
    rows = np.arange(req.shape[0])
    shift = (EntityRng(seed, "mock:discussion:shift", tick).random(entities) * np.maximum(size, 1)).astype(np.int64)
    out = np.full(req.shape[0], "", STR)
    for t in range(int(turns.max(initial=0))):  # turns (a handful), not agents
        u = EntityRng(seed, f"mock:discussion:line{t}", tick).random(entities, 4)
        j = (np.minimum((u[:, 0] ** 1.6 * size).astype(np.int64), np.maximum(size - 1, 0)) + shift) % \
            np.maximum(size, 1)
        if t == 0:  # the cue names the first speaker
            first = (name.shape[0] > 0) & (opener != "")
            at = np.full(req.shape[0], -1, np.int64)
            hit = np.flatnonzero(name == np.repeat(opener, size)) if name.shape[0] else np.zeros(0, np.int64)
            at[np.searchsorted(offsets, hit, side="right") - 1] = hit - offsets[np.searchsorted(offsets, hit,
                                                                                                side="right") - 1]
            j = np.where(first & (at >= 0), at, j)
        who = offsets[:-1] + j
        speaker = name[np.minimum(who, max(name.shape[0] - 1, 0))] if name.shape[0] else out
        text = _phrase(view[np.minimum(who, max(view.shape[0] - 1, 0))] if view.shape[0] else
                       np.full(req.shape[0], 3), u[:, 1])
        other = _pick_other(name, offsets, rows, speaker, u[:, 2])
        mention = (u[:, 3] < MENTION_SHARE) & (other != "")
        text = np.where(mention, np.strings.add(np.strings.add(text, ", right @"), np.strings.add(other, "?")),
                        np.strings.add(text, "."))
        line = np.strings.add(np.strings.add(speaker, ": "), text) if t else np.strings.add(" ", text)
        keep = (t < turns) & (size > 0)
        out = np.where(keep, np.where(out == "", line, np.strings.add(np.strings.add(out, "\n"), line)), out)
    return out.astype(STR)


def _extractions(req: np.ndarray) -> np.ndarray:
    quoted = _extract(req, r"(?s)<<<quote>>>(?P<v>.*?)<<<end quote>>>")
    wants_stance = np.strings.find(req, '"stance"') >= 0
    num = _extract(quoted, r"(?P<v>[1-5])", "3")
    msg = np.strings.replace(np.strings.strip(np.strings.replace(quoted, "Well, ", "")), '"', "'")
    return np.where(wants_stance, np.strings.add(np.strings.add(' {"stance": ', num), "}"),
                    np.strings.add(np.strings.add(' {"message": "', msg), '"}')).astype(STR)


def discussion_policy():
    def policy(batch: RequestBatch, seed: int) -> np.ndarray:
        req = np.repeat(batch.prompts, batch.n)        # one row per completion, keyed by its own entity
        ents = batch.entities
        head = np.strings.slice(batch.prompts, 0, 32)     # the heading tells the kind: look at it once
        kind = np.repeat(np.select([np.strings.startswith(head, "Rewrite the answer below"),
                                    np.strings.startswith(head, "# Group discussion script"),
                                    np.strings.startswith(head, "# Group discussion"),
                                    np.strings.startswith(head, "# Opinion poll")], [1, 2, 3, 4], 0), batch.n)
        out = np.full(req.shape[0], "", STR)
        u = EntityRng(seed, "mock:discussion", batch.tick).random(ents, 4)
        for k, fn in ((1, lambda m: _extractions(req[m])),
                      (2, lambda m: _scripts(req[m], ents[m], seed, batch.tick)),
                      (3, lambda m: _turns(req[m], ents[m], seed, batch.tick)),
                      (4, lambda m: _polls(req[m], np.strings.find(req[m], "Your view before") < 0, u[m]))):
            m = kind == k
            if m.any():
                out[m] = fn(m)
        return out

    return policy
