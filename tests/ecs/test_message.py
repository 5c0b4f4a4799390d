"""Messages: columnar, double-buffered, ordered by (tick, sender, seq) however they were sent."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from socius.ecs import (ColumnShapeError, ColumnTypeError, Message, MessageBatch, Scalar, String,
                        UnknownComponentError, Vector, World, system)
from socius.ecs.message import MessageBus


class Chat(Message):
    text = String()
    topic = Scalar(np.int32)
    mood = Vector(np.float32, 2)


class Ping(Message):
    pass


def _batch_rows(b: MessageBatch) -> list[tuple]:
    return list(zip(b.tick.tolist(), b.sender.tolist(), b.seq.tolist(), b.target.tolist(), b.text.tolist(),
                    b.topic.tolist(), [tuple(m) for m in b.mood.tolist()]))


# one message: (sender, target, text, topic, mood)
msg_st = st.tuples(st.integers(0, 6), st.integers(-1, 6), st.text(max_size=3), st.integers(-9, 9),
                   st.tuples(st.integers(-4, 4), st.integers(-4, 4)))


def _send(bus: MessageBus, tick: int, msgs: list[tuple]) -> None:
    bus.send(Chat, tick, [m[0] for m in msgs], [m[1] for m in msgs], text=[m[2] for m in msgs],
             topic=np.array([m[3] for m in msgs], dtype=np.int64),
             mood=np.array([m[4] for m in msgs], dtype=np.float64).reshape(len(msgs), 2))


def _inbox(tick: int, calls: list[list[tuple]]) -> list[tuple]:
    bus = MessageBus()
    for msgs in calls:
        _send(bus, tick, msgs)
    bus.flip(tick)
    return _batch_rows(bus.read(Chat))


def _expected(tick: int, msgs: list[tuple]) -> list[tuple]:
    """(tick, sender, seq) order; seq counts each sender's messages in the order the sender sent them."""
    out, count = [], {}
    for s, t, text, topic, mood in msgs:
        out.append((tick, s, count.get(s, 0), t, text, topic, tuple(float(x) for x in mood)))
        count[s] = count.get(s, 0) + 1
    return sorted(out, key=lambda r: (r[0], r[1], r[2]))


@settings(max_examples=60, deadline=None)
@given(msgs=st.lists(msg_st, max_size=25), tick=st.integers(0, 50), data=st.data())
def test_inbox_depends_only_on_each_senders_own_sequence(msgs, tick, data):
    """Any interleaving of senders, split into any number of send calls, gives the same inbox."""
    expect = _expected(tick, msgs)
    by_sender = {}
    for m in msgs:
        by_sender.setdefault(m[0], []).append(m)
    # a random merge of the per-sender sequences (each sender keeps its own order) ...
    queues = {s: list(q) for s, q in by_sender.items()}
    merged = []
    while queues:
        s = data.draw(st.sampled_from(sorted(queues)))
        merged.append(queues[s].pop(0))
        if not queues[s]:
            del queues[s]
    # ... cut into random consecutive send calls (empty calls included)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(merged)), max_size=5)))
    calls = [merged[a:b] for a, b in zip([0] + cuts, cuts + [len(merged)])]
    assert _inbox(tick, calls) == expect
    assert _inbox(tick, [msgs]) == expect


@settings(max_examples=60, deadline=None)
@given(msgs=st.lists(msg_st, max_size=25), n_groups=st.integers(1, 5), data=st.data())
def test_permuting_send_calls_of_disjoint_senders_does_not_change_the_inbox(msgs, n_groups, data):
    """Work split by sender (systems, batches or ranks each owning some agents) in any call order."""
    group_of = {s: data.draw(st.integers(0, n_groups - 1)) for s in sorted({m[0] for m in msgs})}
    calls = [[m for m in msgs if group_of[m[0]] == g] for g in range(n_groups)]
    order = data.draw(st.permutations(range(n_groups)))
    reference = _inbox(3, calls)
    assert _inbox(3, [calls[i] for i in order]) == reference == _expected(3, msgs)


def test_order_is_the_same_when_different_systems_send():
    def run(order):
        @system(sends=(Chat,), name="odd")
        def odd(ctx):
            ids = np.array([5, 3, 1])
            ctx.send(Chat, ids, text=[f"odd{i}" for i in ids], topic=1, mood=[0.0, 1.0])

        @system(sends=(Chat,), name="even")
        def even(ctx):
            ids = np.array([4, 0, 2, 4])
            ctx.send(Chat, ids, target=0, text=["e4a", "e0", "e2", "e4b"], topic=2, mood=[1.0, 0.0])

        w = World()
        w.add_systems(*[{"odd": odd, "even": even}[n] for n in order])
        w.step()
        return w.messages.read(Chat)

    a, b = run(["odd", "even"]), run(["even", "odd"])
    assert _batch_rows(a) == _batch_rows(b)
    assert a.sender.tolist() == [0, 1, 2, 3, 4, 4, 5]
    assert a.seq.tolist() == [0, 0, 0, 0, 0, 1, 0]
    assert a.text.tolist() == ["e0", "odd1", "e2", "odd3", "e4a", "e4b", "odd5"]
    assert a.target.tolist() == [0, -1, 0, -1, 0, 0, -1]


class Inbox:
    def __init__(self):
        self.read: dict[int, list] = {}


@system(sends=(Chat,), receives=(Chat,), name="relay")
def relay(ctx):
    got = ctx.read(Chat)
    ctx.world.resource(Inbox).read[ctx.tick] = (got.tick.tolist(), got.text.tolist())
    if ctx.tick < 3:
        ctx.send(Chat, [ctx.tick], text=[f"sent at {ctx.tick}"], topic=ctx.tick)


@system(phase="post", receives=(Chat,), name="late_reader")
def late_reader(ctx):
    # a later phase of the sending tick still sees last tick's messages only
    ctx.world.resource(Inbox).read[(ctx.tick, "post")] = ctx.read(Chat).text.tolist()


def test_messages_sent_in_tick_t_are_readable_in_t_plus_1_only():
    w = World()
    w.insert_resource(Inbox())
    w.add_systems(relay, late_reader)
    w.step(5)
    read = w.resource(Inbox).read
    assert read[0] == ([], [])
    assert read[1] == ([0], ["sent at 0"])
    assert read[2] == ([1], ["sent at 1"])
    assert read[3] == ([2], ["sent at 2"])
    assert read[4] == ([], [])  # nothing was sent in tick 3: tick 2's messages are gone
    assert read[(0, "post")] == [] and read[(1, "post")] == ["sent at 0"]


def test_by_target_groups_and_keeps_order():
    bus = MessageBus()
    bus.send(Chat, 0, [3, 1, 2, 1], target=[7, 7, -1, 5], text=["a", "b", "c", "d"])
    bus.flip(0)
    b = bus.read(Chat)
    targets, offsets, order = b.by_target()
    assert targets.tolist() == [-1, 5, 7]
    groups = {int(t): b.text[order[offsets[j]:offsets[j + 1]]].tolist() for j, t in enumerate(targets)}
    assert groups == {-1: ["c"], 5: ["d"], 7: ["b", "a"]}  # within a target: (sender, seq) order
    sub = b.take(np.array([1, 0]))
    assert sub.text.tolist() == [b.text[1], b.text[0]]
    assert b.column("sender").tolist() == [1, 1, 2, 3] and b.column("text").tolist() == ["b", "d", "c", "a"]


def test_an_empty_inbox_has_every_column():
    b = MessageBus().read(Chat)
    assert len(b) == 0 and b.text.shape == (0,) and b.mood.shape == (0, 2) and b.sender.dtype == np.int64
    assert len(MessageBus().read(Ping)) == 0


def test_bad_messages_name_the_message_and_column():
    bus = MessageBus()
    with pytest.raises(UnknownComponentError, match="Chat has no column 'volume'"):
        bus.send(Chat, 0, [1], volume=3)
    with pytest.raises(ColumnTypeError, match="Chat.topic"):
        bus.send(Chat, 0, [1, 2], topic=[0.5, 1.5])
    with pytest.raises(ColumnTypeError, match="Chat.text"):
        bus.send(Chat, 0, [1], text=[4])
    with pytest.raises(ColumnShapeError, match="Chat.mood"):
        bus.send(Chat, 0, [1, 2], mood=np.zeros((2, 3)))
    with pytest.raises(ColumnShapeError, match="Chat.target"):
        bus.send(Chat, 0, [1, 2], target=[1, 2, 3])
    with pytest.raises(UnknownComponentError, match="'volume'"):
        MessageBus().read(Chat).column("volume")
    with pytest.raises(AttributeError, match="'volume'"):
        MessageBus().read(Chat).volume
    assert bus.outbox == {}  # nothing half-sent


# ------------------------------------------------------------------ order at realistic sizes
class Note(Message):
    serial = Scalar(np.int64)


class Plan:
    """A plain resource: the send calls (sender, target, serial) a system makes this tick, in order."""

    def __init__(self, calls):
        self.calls = calls


@system(sends=(Note,), resources=(Plan,))
def send_planned(ctx):
    for sender, target, serial in ctx.resource(Plan).calls:  # a handful of calls, not agents
        ctx.send(Note, sender=sender, target=target, serial=serial)


def crowd(seed: int, n: int, m: int, n_targets: int):
    """``n`` unique IDs in shuffled order; ``m`` messages in shuffled send order, cut into a few calls;
    targets from a small set (many senders per target), some broadcasts (-1)."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(rng.choice(10 * n, size=n, replace=False)).astype(np.int64)
    sender = rng.choice(ids, m)
    target = rng.choice(ids[:n_targets], m)
    target[rng.random(m) < 0.1] = -1
    serial = rng.permutation(m).astype(np.int64)  # identifies each message in the order it was sent
    cuts = np.sort(rng.choice(np.arange(1, m), size=4, replace=False))
    calls = [(sender[a:b], target[a:b], serial[a:b]) for a, b in zip([0, *cuts], [*cuts, m])]
    return ids, sender, target, serial, calls


def expected_by_target(tick: int, sender, target, serial) -> dict[int, list[tuple]]:
    """Plain Python: seq counts each sender's messages in send order; each target's list in (tick, sender, seq)."""
    count: dict[int, int] = {}
    out: dict[int, list] = {}
    for s, t, x in zip(sender.tolist(), target.tolist(), serial.tolist()):
        out.setdefault(t, []).append((tick, s, count.get(s, 0), x))
        count[s] = count.get(s, 0) + 1
    return {t: sorted(rows) for t, rows in out.items()}


def delivered_by_target(b: MessageBatch) -> dict[int, list[tuple]]:
    targets, offsets, order = b.by_target()
    rows = list(zip(b.tick[order].tolist(), b.sender[order].tolist(), b.seq[order].tolist(), b.serial[order].tolist()))
    return {int(t): rows[offsets[j]:offsets[j + 1]] for j, t in enumerate(targets.tolist())}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delivery_by_target_keeps_tick_sender_seq_order_for_thousands_of_messages(seed):
    n, m = 3000, 8000
    ids, sender, target, serial, calls = crowd(seed, n, m, n_targets=120)
    w = World(seed=seed)
    for chunk in np.array_split(ids, 3):  # spawned in shuffled ID order, in chunks
        w.spawn(chunk.shape[0], ids=chunk)
    w.insert_resource(Plan(calls))
    w.add_systems(send_planned)
    w.step()
    b = w.messages.read(Note)
    want = expected_by_target(0, sender, target, serial)
    assert len(b) == m and max(len(v) for v in want.values()) > 50  # several senders per target
    assert delivered_by_target(b) == want
    everything = sorted(r for rows in want.values() for r in rows)
    assert list(zip(b.tick.tolist(), b.sender.tolist(), b.seq.tolist(), b.serial.tolist())) == everything
