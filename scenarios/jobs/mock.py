"""The mock engine's policy for the job market: plausible dynamics without an LLM.

It reads each prompt as a model would (vectorised regexes over the batch):

- **apply**: a seeker applies to an ad in its own city (or remote) whose top
  salary reaches its reservation wage — the expected salary, lowered 3 % a
  week of searching — and whose minimum experience it nearly meets; each
  with probability 0.85;
- **screen**: invite applicants with about the required experience who do not
  expect far above the band, best match first, up to the limit; the question
  asks about the ad's first requirement;
- **answer**: a confident answer when the seeker's skills overlap the
  requirements and it has the experience (85 %), else a hesitant one (some
  strong candidates fumble, 10 % of weak ones shine);
- **offer**: the first confident candidate who does not expect more than 1.3×
  the top of the band, at the expected salary clipped to the band; nobody
  confident: 25 % of the time the first candidate at the bottom of the band;
- **respond**: the best-paid offer if it reaches the reservation wage (95 %),
  else decline (10 % accept anyway);
- **extraction** calls: the numbers read out of the quoted reply.

2 % of the apply replies come back as prose so the extraction path runs.
Every draw is keyed by (seed, entity, tick) — per list line by (entity, line).
"""
from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from socius.ecs import STR, EntityRng
from socius.llm import RequestBatch

from .market import A, cat, join_groups, money, to_str

PROSE_SHARE = 0.02


def _get(texts: np.ndarray, pattern: str, default: str = "") -> np.ndarray:
    found = pc.extract_regex(A(texts), pattern=pattern)
    return to_str(pc.if_else(found.is_valid(), found.field("v"), default))


def _num(texts: np.ndarray, pattern: str, default: float = np.nan) -> np.ndarray:
    return _get(texts, pattern, repr(float(default))).astype(np.float64)


def _lines(req: np.ndarray, header: str):
    """The numbered lines after ``header`` up to the blank line: ``(lines, parent, position)``."""
    block = _get(req, "(?s)" + header + r"[^\n]*\n(?P<v>.*?)\n\n")
    lists = pc.split_pattern(A(block), pattern="\n")
    parent = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    lines = to_str(lists.flatten())
    offsets = lists.offsets.to_numpy().astype(np.int64)
    pos = np.arange(lines.shape[0]) - offsets[parent]
    ok = lines != ""
    return lines[ok], parent[ok], pos[ok]


def _u(seed: int, stream: str, tick: int, ents: np.ndarray, parent: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return EntityRng(seed, stream, tick).random(ents[parent] * 64 + pos)


def _running_count(flag: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Per line, how many lines of its (contiguous) group up to and including it have ``flag``."""
    if not flag.shape[0]:
        return np.zeros(0, np.int64)
    cs = np.cumsum(flag)
    start = np.r_[True, parent[1:] != parent[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(flag.shape[0]), 0))
    return cs - (cs[first] - flag[first])


def _numbers(flag: np.ndarray, parent: np.ndarray, pos: np.ndarray, n: int) -> np.ndarray:
    """Per request, the 1-based positions where ``flag``, as ``"1, 3"``."""
    sel = np.flatnonzero(flag)
    counts = np.bincount(parent[sel], minlength=n)
    order = sel[np.lexsort((pos[sel], parent[sel]))]
    return join_groups((pos[order] + 1).astype(STR), counts, ", ")


def _apply(req, ents, seed, tick):
    n = req.shape[0]
    lines, p, pos = _lines(req, "Job ads found for you")
    home = _get(req, r"Based in (?P<v>[^.\n]+)\.")
    weeks = _num(req, r"looking for (?P<v>\d+) weeks", 0)
    expected = _num(req, r"hope for about (?P<v>[\d.]+)k", 0)
    exp = _num(req, r"Your CV: (?P<v>\d+) years", 0)
    loc = _get(lines, r"\((?P<v>[^()]+)\)\. Requirements")
    high = _num(lines, r"to (?P<v>[\d.]+)k a year", 0)
    least = _num(lines, r"at least (?P<v>\d+) years", 0)
    reservation = expected * np.maximum(0.7, 1 - 0.03 * weeks)
    u = _u(seed, "mock:jobs:apply", tick, ents, p, pos)
    go = ((loc == home[p]) | (loc == "remote")) & (high >= reservation[p]) & (exp[p] >= least - 2) & (u < 0.85)
    nums = _numbers(go, p, pos, n)
    u0 = EntityRng(seed, "mock:jobs:prose", tick).random(ents)
    return np.where(u0 < PROSE_SHARE, cat(" I would apply to ", np.where(nums == "", "none", nums)),
                    cat(' {"apply": "', nums, '"}'))


def _screen(req, ents, seed, tick):
    n = req.shape[0]
    lines, p, pos = _lines(req, "Applicants")
    least = _num(req, r"at least (?P<v>\d+) years", 0)
    high = _num(req, r"to (?P<v>[\d.]+)k a year", 0)
    limit = _num(req, r"at most (?P<v>\d+)\)", 3)
    exp = _num(lines, r"^\d+\. [^,]+, (?P<v>\d+) years", 0)
    expects = _num(lines, r"expects (?P<v>[\d.]+)k", 0)
    u = _u(seed, "mock:jobs:screen", tick, ents, p, pos)
    ok = (exp >= least[p] - 1) & (expects <= 1.3 * high[p]) & (u < 0.9)
    ok &= _running_count(ok, p) <= limit[p]
    skill = np.strings.strip(_get(req, r"Requirements: (?P<v>[^,;]+)", "this kind of work"))
    question = cat("Tell me about a time you used ", skill, " at work.")
    return cat(' {"invite": "', _numbers(ok, p, pos, n), '", "question": "', question, '"}')


def _answer(req, ents, seed, tick):
    skills = _get(req, r"Skills: (?P<v>[^.\n]+)\.")
    lists = pc.split_pattern(A(skills), pattern=", ")
    parent = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    flat = to_str(lists.flatten())
    needs = _get(req, r"Requirements: (?P<v>[^;\n]+);")
    shared = np.bincount(parent, weights=(flat != "") & (np.strings.find(needs[parent], flat) >= 0),
                         minlength=req.shape[0])
    exp = _num(req, r"Your CV: (?P<v>\d+) years", 0)
    least = _num(req, r"You interview for: .*?at least (?P<v>\d+) years", 0)
    u = EntityRng(seed, "mock:jobs:answer", tick).random(ents)
    strong = np.where((shared >= 1) & (exp >= least - 1), u < 0.85, u < 0.1)
    first = np.strings.strip(_get(skills, r"^(?P<v>[^,]+)", "my skills"))
    good = cat(" I have ", exp.astype(np.int64).astype(STR), " years of experience and use ", first,
               " every day; I am confident I can do this job well.")
    weak = " I have not done much of this yet, but I learn fast and I am keen to grow into the role."
    return cat(' {"answer": "', np.where(strong, good, weak), '"}')


def _offer(req, ents, seed, tick):
    n = req.shape[0]
    lines, p, pos = _lines(req, "Candidates you interviewed")
    low = _num(req, r"Salary band: (?P<v>[\d.]+)k", 0)
    high = _num(req, r"Salary band: [\d.]+k to (?P<v>[\d.]+)k", 0)
    hopes = _num(lines, r"hopes for (?P<v>[\d.]+)k", 0)
    strong = (np.strings.find(lines, "confident") >= 0) & (hopes <= 1.3 * high[p])
    big = np.iinfo(np.int64).max
    first = np.full(n, big)
    np.minimum.at(first, p[strong], pos[strong])
    u = EntityRng(seed, "mock:jobs:offer", tick).random(ents, 2)
    pick = np.where(first < big, first + 1, np.where(u[:, 0] < 0.25, 1, 0))
    pick = np.where(np.bincount(p, minlength=n) > 0, pick, 0)
    want = np.zeros(n)
    chosen = (pos + 1) == pick[p]
    want[p[chosen]] = hopes[chosen]
    salary = np.where(first < big, np.clip(want + (u[:, 1] - 0.5) * 2, low, high), low)
    return cat(' {"offer": ', pick.astype(STR), ', "salary": ', money(np.where(pick > 0, salary, 0)), "}")


def _respond(req, ents, seed, tick):
    n = req.shape[0]
    lines, p, pos = _lines(req, "Offers")
    weeks = _num(req, r"looking for (?P<v>\d+) weeks", 0)
    expected = _num(req, r"hoped for about (?P<v>[\d.]+)k", 0)
    salary = _num(lines, r"Salary offered: (?P<v>[\d.]+)k", 0)
    best = np.full(n, -1.0)
    np.maximum.at(best, p, salary)
    top = np.full(n, np.iinfo(np.int64).max)
    is_best = salary == best[p]
    np.minimum.at(top, p[is_best], pos[is_best])
    u = EntityRng(seed, "mock:jobs:respond", tick).random(ents)
    reservation = expected * np.maximum(0.75, 1 - 0.04 * weeks)
    take = (best > 0) & np.where(best >= reservation, u < 0.95, u < 0.1)
    return cat(' {"accept": ', np.where(take, top + 1, 0).astype(STR), "}")


def _extract(req):
    quoted = _get(req, r"(?s)<<<quote>>>(?P<v>.*?)<<<end quote>>>")
    nums = to_str(pc.replace_substring_regex(A(quoted), pattern=r"[^0-9]+", replacement=" "))
    nums = np.strings.replace(np.strings.strip(nums), " ", ", ")
    return cat(' {"apply": "', nums, '"}')


def jobs_policy():
    def policy(batch: RequestBatch, seed: int) -> np.ndarray:
        req = np.repeat(batch.prompts, batch.n)
        ents = batch.entities
        kinds = [("Rewrite the answer below", lambda m: _extract(req[m])),
                 ("# Job search", lambda m: _apply(req[m], ents[m], seed, batch.tick)),
                 ("# Screening applications", lambda m: _screen(req[m], ents[m], seed, batch.tick)),
                 ("# Job interview", lambda m: _answer(req[m], ents[m], seed, batch.tick)),
                 ("# Hiring decision", lambda m: _offer(req[m], ents[m], seed, batch.tick)),
                 ("# Job offers", lambda m: _respond(req[m], ents[m], seed, batch.tick))]
        out = np.full(req.shape[0], "", STR)
        start = np.strings.slice(batch.prompts, 0, 32)     # the heading tells the kind: look at it once
        for head, fn in kinds:  # six kinds of prompt, not agents
            m = np.repeat(np.strings.startswith(start, head), batch.n)
            if m.any():
                out[m] = fn(m)
        return out

    return policy
