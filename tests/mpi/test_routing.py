"""Message routing: each owner's inbox is the one-rank inbox of its targets, in (tick, sender, seq) order."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socius.ecs import Message, Ragged, Scalar, String, Vector
from socius.ecs.message import HEADER, MessageBatch, MessageBus
from socius.mpi import (Partition, Router, block_partition, group_partition, local_view, merge_batches, route,
                        run_ranks, self_context)

STR = np.dtypes.StringDType()
SETTINGS = dict(derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Post(Message):
    text = String()
    score = Scalar(np.float32)
    topic = Vector(np.int16, 3)
    cites = Ragged(np.int64)


class Like(Message):
    post = Scalar(np.int64)


def scenario(seed: int, n: int, m: int):
    """Global entities and messages, the same on every rank; ``calls`` splits them over several sends."""
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(5 * n + 10, size=n, replace=False)).astype(np.int64)
    sender = rng.choice(ids, m)
    target = np.where(rng.random(m) < 0.25, -1, rng.choice(ids, m))
    text = np.array([f"post {i} " + "ü" * int(i % 5) for i in range(m)], dtype=STR)
    score = rng.normal(size=m).astype(np.float32)
    topic = rng.integers(-9, 9, size=(m, 3)).astype(np.int16)
    cites = [rng.choice(ids, int(i % 3)).tolist() for i in range(m)]
    calls = rng.integers(0, 3, m)
    return rng, ids, dict(sender=sender, target=target, text=text, score=score, topic=topic, cites=cites, calls=calls)


def send(bus: MessageBus, msgs: dict, keep: np.ndarray, tick: int) -> None:
    """Send the kept messages in three calls (systems, batches), then flip."""
    for c in range(3):
        sel = np.flatnonzero(keep & (msgs["calls"] == c))
        bus.send(Post, tick, sender=msgs["sender"][sel], target=msgs["target"][sel], text=msgs["text"][sel],
                 score=msgs["score"][sel], topic=msgs["topic"][sel], cites=[msgs["cites"][i] for i in sel])
        bus.send(Like, tick, sender=msgs["sender"][sel], target=msgs["target"][sel], post=sel.astype(np.int64))
    bus.flip(tick)


def same_batch(a: MessageBatch, b: MessageBatch) -> bool:
    if len(a) != len(b):
        return False
    for k in HEADER:
        if not np.array_equal(getattr(a, k), getattr(b, k)):
            return False
    for k, col in a.kind.columns().items():
        x, y = a.payload[k], b.payload[k]
        if col.kind == "ragged":
            if not x.equals(y):
                return False
        elif col.kind == "string":
            if not bool((x == y).all()):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def check_routing(ctx, agree, seed: int, n: int, m: int, kind: str, broadcast: str) -> int:
    rng, ids, msgs = scenario(seed, n, m)
    if kind == "group":
        part = group_partition(ids, rng.integers(0, 4, n), ctx.size)
    elif kind == "block":
        part = block_partition(ids, ctx.size)
    else:
        part = Partition.from_owner(ids, rng.integers(0, ctx.size, n), ctx.size)
    one_rank = MessageBus()
    send(one_rank, msgs, np.ones(m, bool), tick=7)
    mine = MessageBus()
    send(mine, msgs, part.owner_of(msgs["sender"]) == ctx.rank if m else np.zeros(0, bool), tick=7)
    router = Router(ctx, part, broadcast=broadcast)
    sent = router.route_types(mine, [Like, Post])
    for kind_ in (Post, Like):
        got = mine.read(kind_)
        expect = local_view(one_rank.read(kind_), part, ctx.rank, broadcast)
        if broadcast == "local":  # broadcasts stay with their sender's rank
            b = one_rank.read(kind_)
            bc = np.flatnonzero(b.target == -1)
            keep_bc = bc[part.owner_of(b.sender[bc]) == ctx.rank]
            expect = merge_batches(kind_, [expect, b.take(keep_bc)])
        agree(same_batch(got, expect), f"{kind_.__qualname__}: routed inbox differs from the one-rank inbox")
    return sent


@settings(max_examples=30, **SETTINGS)
@given(size=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), m=st.integers(0, 150),
       kind=st.sampled_from(["block", "group", "random"]), broadcast=st.sampled_from(["all", "local"]))
def test_routed_inbox_is_one_rank_order_on_simulated_ranks(size, seed, n, m, kind, broadcast):
    def agree(ok, message=""):
        assert ok, message

    def job(ctx):
        return check_routing(ctx, agree, seed, n, m, kind, broadcast)
    run_ranks(size, job)


@pytest.mark.mpi
@settings(max_examples=20, **SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), m=st.integers(0, 150),
       kind=st.sampled_from(["block", "group", "random"]), broadcast=st.sampled_from(["all", "local"]))
def test_routed_inbox_is_one_rank_order_on_mpi_ranks(ctx, agree, run_example, seed, n, m, kind, broadcast):
    run_example(check_routing, ctx, agree, seed=seed, n=n, m=m, kind=kind, broadcast=broadcast)


def _batch(sender, seq, tick=1):
    sender = np.asarray(sender, np.int64)
    k = sender.shape[0]
    return MessageBatch(Like, {"tick": np.full(k, tick, np.int64), "sender": sender,
                               "target": np.zeros(k, np.int64), "seq": np.asarray(seq, np.int64)},
                        {"post": np.arange(k, dtype=np.int64)})


def test_merge_orders_by_tick_sender_seq_whatever_the_arrival():
    a = _batch([5, 2, 2], [0, 1, 0])
    b = _batch([1, 5], [0, 1])
    m = merge_batches(Like, [a, b])
    assert m.sender.tolist() == [1, 2, 2, 5, 5]
    assert m.seq.tolist() == [0, 0, 1, 0, 1]
    assert merge_batches(Like, [b, a]).post.tolist() == m.post.tolist()
    assert len(merge_batches(Like, [])) == 0


def test_merge_refuses_a_key_seen_twice():
    with pytest.raises(ValueError, match="arrived twice"):
        merge_batches(Like, [_batch([3], [0]), _batch([3], [0])])


def test_one_rank_routing_is_the_identity():
    _, ids, msgs = scenario(3, 20, 60)
    bus = MessageBus()
    send(bus, msgs, np.ones(60, bool), tick=0)
    before = bus.read(Post)
    out = route(self_context(), before, block_partition(ids, 1))
    assert same_batch(out, before)


def test_unknown_target_names_the_entity():
    part = block_partition(np.arange(4), 1)
    bad = _batch([0], [0])
    bad.target[:] = 99
    with pytest.raises(KeyError, match="99"):
        route(self_context(), bad, part)


def test_route_inbox_requires_the_same_types_on_every_rank():
    part = block_partition(np.arange(4), 2)

    def job(ctx):
        bus = MessageBus()
        if ctx.rank == 0:
            bus.send(Like, 0, sender=[0], target=[3], post=[1])
        bus.flip(0)
        return Router(ctx, part).route_inbox(bus)

    with pytest.raises(Exception, match="different message types"):
        run_ranks(2, job)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**62), st.integers(0, 2**40)), max_size=40))
def test_merge_order_matches_lexsort_for_any_keys(keys):
    from socius.mpi.routing import _order
    t, s, q = (np.array([k[i] for k in keys], dtype=np.int64) for i in range(3))
    assert np.array_equal(_order(t, s, q), np.lexsort((q, s, t)))
    same_tick = np.zeros_like(t)
    assert np.array_equal(_order(same_tick, s % 1000, q % 1000), np.lexsort((q % 1000, s % 1000)))


# ---------------------------------------------------------------- order at realistic sizes
class Note(Message):
    serial = Scalar(np.int64)


def crowd(seed: int, n: int, m: int, n_targets: int):
    """``n`` unique IDs in shuffled order; ``m`` messages in shuffled send order, cut into five calls;
    targets from a small set (many senders per target) and some broadcasts (-1)."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(rng.choice(10 * n, size=n, replace=False)).astype(np.int64)
    sender = rng.choice(ids, m)
    target = rng.choice(ids[:n_targets], m)
    target[rng.random(m) < 0.1] = -1
    serial = rng.permutation(m).astype(np.int64)
    call = np.repeat(np.arange(5), np.diff(np.r_[0, np.sort(rng.choice(np.arange(1, m), 4, replace=False)), m]))
    owner = rng.integers(0, 3, n)
    return ids, owner, sender, target, serial, call


def expected_rows(tick: int, sender, target, serial) -> dict[int, list[tuple]]:
    """Plain Python: seq counts each sender's messages in send order; per target, (tick, sender, seq) order."""
    count: dict[int, int] = {}
    out: dict[int, list] = {}
    for s, t, x in zip(sender.tolist(), target.tolist(), serial.tolist()):
        out.setdefault(t, []).append((tick, s, count.get(s, 0), x))
        count[s] = count.get(s, 0) + 1
    return {t: sorted(rows) for t, rows in out.items()}


def routed_by_target(ctx, seed: int, n: int, m: int):
    ids, owner, sender, target, serial, call = crowd(seed, n, m, n_targets=100)
    part = Partition.from_owner(ids, owner % ctx.size, ctx.size)
    mine = part.owner_of(sender) == ctx.rank
    bus = MessageBus()
    for c in range(5):  # this rank's senders, in the global send order, over several calls
        sel = np.flatnonzero(mine & (call == c))
        bus.send(Note, 9, sender=sender[sel], target=target[sel], serial=serial[sel])
    bus.flip(9)
    Router(ctx, part).route_types(bus, [Note])
    b = bus.read(Note)
    targets, offsets, order = b.by_target()
    rows = list(zip(b.tick[order].tolist(), b.sender[order].tolist(), b.seq[order].tolist(), b.serial[order].tolist()))
    inbox = list(zip(b.tick.tolist(), b.sender.tolist(), b.seq.tolist(), b.serial.tolist()))
    return {int(t): rows[offsets[j]:offsets[j + 1]] for j, t in enumerate(targets.tolist())}, inbox, part


@pytest.mark.parametrize("size", [1, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_routed_delivery_by_target_keeps_order_for_thousands_of_messages(size, seed):
    n, m = 3000, 8000
    ids, owner, sender, target, serial, call = crowd(seed, n, m, n_targets=100)
    want = expected_rows(9, sender, target, serial)
    assert max(len(v) for v in want.values()) > 50
    total = 0
    for r, (got, inbox, part) in enumerate(run_ranks(size, routed_by_target, seed, n, m)):
        mine = {t: rows for t, rows in want.items() if t == -1 or part.owner_of(np.array([t]))[0] == r}
        assert got == mine, f"rank {r} of {size}: per-target delivery differs from the one-rank order"
        assert inbox == sorted(x for rows in mine.values() for x in rows)
        total += sum(len(v) for t, v in got.items() if t != -1)
    assert total == m - len(want.get(-1, []))  # every targeted message reached exactly one rank
