"""Snapshots: exact round trips, identical continued runs, damaged files, atomic writes.

The world used here has every column kind (scalar, float16 vector, string,
ragged), messages in flight, a saved resource with list and array fields, a
plain (unsaved) resource, and systems that queue commands and draw random
numbers — everything a snapshot must carry for a resumed run to continue
exactly as an uninterrupted one.
"""
import dataclasses
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

import socius.ecs.snapshot as snapshot_module
from socius.ecs import (Component, Message, Ragged, RaggedArray, Resource, Scalar, SnapshotError, String, Vector,
                        World, read_manifest, system)


class Agent(Component):
    __component_name__ = "snaptest.Agent"
    wealth = Scalar(np.int64, default=5)
    mood = Scalar(np.float32)
    active = Scalar(np.bool_, default=True)


class Mind(Component):
    __component_name__ = "snaptest.Mind"
    emb = Vector(np.float16, 4)
    name = String()


class Links(Component):
    __component_name__ = "snaptest.Links"
    follows = Ragged(np.int64)


class Gift(Message):
    __component_name__ = "snaptest.Gift"
    amount = Scalar(np.int64)
    note = String()
    vec = Vector(np.float32, 2)


class Econ(Resource):
    __resource_name__ = "snaptest.Econ"
    tax: float = 0.1
    history: list = dataclasses.field(default_factory=list)
    bins: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(4, dtype=np.int64))
    label: str = "econ"


class Calls:
    """A plain resource: not state, kept by restore, never saved."""

    def __init__(self):
        self.n = 0


TYPES = (Agent, Mind, Links, Gift, Econ)


@system(phase="pre", reads=(Agent, Mind), writes=(Agent, Mind), receives=(Gift,))
def receive_gifts(ctx):
    g = ctx.read(Gift)
    v = ctx.query(Agent)
    if len(g):
        pos, found = v.rows_of(g.target)
        add = np.zeros(len(v), dtype=np.int64)
        np.add.at(add, pos[found], g.amount[found])
        v.set(Agent, wealth=v[Agent].wealth + add)
    m = ctx.query(Mind)
    if len(g) and len(m):
        pos, found = m.rows_of(g.target)
        names = np.array(m[Mind].name, copy=True)
        names[pos[found]] = g.note[found]  # the last gift per target wins: (sender, seq) order
        m.set(Mind, name=names)


@system(phase="update", reads=(Agent, Links), sends=(Gift,), resources=(Calls,))
def give_gifts(ctx):
    ctx.resource(Calls).n += 1
    v = ctx.query(Agent, Links, where=lambda view: view[Agent].wealth > 0)
    if not len(v):
        return
    follows = v[Links].follows
    has = follows.lengths > 0
    pick = ctx.rng("gift").integers(v.ids, 0, np.maximum(follows.lengths, 1))
    target = np.full(len(v), -1, dtype=np.int64)  # -1: no one to give to (the gift is lost)
    target[has] = follows.values[follows.offsets[:-1][has] + pick[has]]
    ctx.send(Gift, v.ids, target, amount=1 + ctx.rng("amount").integers(v.ids, 0, 2) * has,
             note=[f"from {i}@{ctx.tick}" for i in v.ids.tolist()], vec=ctx.rng("vec").random(v.ids, size=2))


@system(phase="update", reads=(Agent, Mind), writes=(Agent, Mind), resources=(Econ,))
def drift(ctx):
    v = ctx.query(Agent)
    rng = ctx.rng("drift")
    with v.write(Agent, "mood", "wealth") as a:
        a.mood = (a.mood + rng.normal(v.ids)).astype(np.float32)
        a.wealth = a.wealth - (rng.random(v.ids) < ctx.resource(Econ).tax)
    m = ctx.query(Mind)
    m.set(Mind, emb=(m[Mind].emb + rng.random(m.ids, size=4)).astype(np.float16))
    econ = ctx.resource(Econ)
    econ.history.append(int(v[Agent].wealth.sum()))
    econ.bins = econ.bins + np.bincount(np.clip(v[Agent].wealth, 0, 3), minlength=4)


@system(phase="post", reads=(Agent, Links, Mind), writes=(Agent, Links, Mind))
def churn(ctx):
    v = ctx.query(Agent)
    rng = ctx.rng("churn")
    dead = v.ids[(v[Agent].wealth < -2) | (rng.random(v.ids) < 0.05)]
    if dead.shape[0]:
        ctx.commands.despawn(dead)
    born = int(ctx.generator("births").integers(0, 4))
    ids = ctx.commands.spawn(born, {Agent: {"wealth": 3, "mood": 0.5}})
    if len(v):
        k = rng.integers(ids, 0, 3) if born else np.zeros(0, dtype=np.int64)
        targets = rng.integers(ids, 0, len(v), size=2)
        ctx.commands.add(ids, Links, follows=[v.ids[targets[j, :k[j]]].tolist() for j in range(born)])
    if born:
        ctx.commands.add(ids[:1], Mind, name="newborn", emb=[1, 0, 0, 1])
    lonely = v.ids[rng.random(v.ids, size=2)[:, 1] < 0.1]
    alive_lonely = np.setdiff1d(lonely, dead)
    if alive_lonely.shape[0]:
        ctx.commands.remove(alive_lonely, Links)


SYSTEMS = (receive_gifts, give_gifts, drift, churn)


def make_world(seed: int, n: int = 30) -> World:
    w = World(seed=seed)
    g = np.random.default_rng(seed)
    ids = w.spawn(n, {Agent: {"wealth": g.integers(0, 6, n), "mood": g.random(n).astype(np.float32)}})
    w.add_component(ids[::2], Mind, emb=g.random((len(ids[::2]), 4)), name=[f"agent {i}" for i in ids[::2]])
    w.add_component(ids, Links, follows=[g.choice(ids, size=g.integers(0, 4), replace=False).tolist() for _ in ids])
    w.insert_resource(Econ())
    w.insert_resource(Calls())
    w.add_systems(*SYSTEMS)
    return w


def fresh_world_with_systems() -> World:
    w = World(seed=12345)  # the snapshot's seed replaces this one
    w.insert_resource(Calls())
    w.add_systems(*SYSTEMS)
    return w


def assert_same_state(a: World, b: World) -> None:
    assert a.state_hash() == b.state_hash()
    assert (a.seed, a.tick, a.next_id) == (b.seed, b.tick, b.next_id)
    assert np.array_equal(a.entities, b.entities)
    for c in (Agent, Mind, Links):
        assert np.array_equal(a.ids_of(c), b.ids_of(c))
        for col in c.columns():
            x, y = a.get(c, col), b.get(c, col)
            if isinstance(x, RaggedArray):
                assert x.equals(y)
            else:
                assert x.dtype == y.dtype and np.array_equal(x, y)
    ga, gb = a.messages.read(Gift), b.messages.read(Gift)
    for col in ("tick", "sender", "target", "seq", "amount", "note", "vec"):
        assert np.array_equal(ga.column(col), gb.column(col))
    ea, eb = a.resource(Econ), b.resource(Econ)
    assert ea.history == eb.history and np.array_equal(ea.bins, eb.bins) and ea.bins.dtype == eb.bins.dtype
    assert (ea.tax, ea.label) == (eb.tax, eb.label)


# ------------------------------------------------------------------ round trips and resumed runs
def test_round_trip_restores_every_column_kind_message_and_resource(tmp_path):
    w = make_world(3)
    w.step(4)
    assert len(w.messages.read(Gift)) > 0 and len(w.resource(Econ).history) == 4
    path = w.save(tmp_path / "w.snap")
    loaded = World.load(path, types=TYPES)
    assert_same_state(w, loaded)
    assert loaded.get_resource(Calls) is None  # a plain resource is not saved
    manifest, _ = read_manifest(path)
    assert (manifest["seed"], manifest["tick"], manifest["next_id"]) == (3, 4, w.next_id)
    assert manifest["state_hash"] == w.state_hash()


class Plain(Component):  # the default stable name: module.QualName
    x = Scalar(np.int64)


def test_load_resolves_default_names_by_import(tmp_path):
    w = World()
    w.spawn(2, {Plain: {"x": [1, 2]}})
    path = w.save(tmp_path / "p.snap")
    loaded = World.load(path)  # no types=: found by importing this module
    assert loaded.component_by_name(Plain.__component_name__) is Plain
    assert loaded.get(Plain, "x").tolist() == [1, 2]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), k=st.integers(0, 6), m=st.integers(0, 6))
def test_resumed_run_is_identical_to_an_uninterrupted_one(tmp_path_factory, seed, k, m):
    path = tmp_path_factory.mktemp("snap") / "run.snap"
    straight = make_world(seed)
    straight.step(k + m)

    first = make_world(seed)
    first.step(k)
    saved_hash = first.state_hash()
    first.save(path)
    resumed = fresh_world_with_systems()
    resumed.restore(path)  # no types=: the systems' declarations name every saved type
    assert resumed.state_hash() == saved_hash
    resumed.step(m)
    assert_same_state(resumed, straight)

    # rewinding a world that went on: restore into itself, run again, same result
    first.step(m + 1)
    first.restore(path)
    assert first.state_hash() == saved_hash
    first.step(m)
    assert_same_state(first, straight)


def test_hash_is_the_same_in_another_process(tmp_path):
    w = make_world(8)
    w.step(3)
    path = w.save(tmp_path / "w.snap")
    code = textwrap.dedent(f"""
        from socius.ecs import World
        import importlib.util
        spec = importlib.util.spec_from_file_location("snaptest_mod", {__file__!r})
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        w = World.load({str(path)!r}, types=mod.TYPES)
        print(w.state_hash())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == w.state_hash()


def test_restore_keeps_systems_and_plain_resources_and_clears_what_the_snapshot_lacks(tmp_path):
    a = World(seed=1)
    a.spawn(3, {Agent: {}})
    path = a.save(tmp_path / "a.snap")
    b = make_world(2)
    b.step(2)
    calls = b.resource(Calls)
    b.restore(path)
    assert b.resource(Calls) is calls and len(b.schedule.systems()) == len(SYSTEMS)
    assert b.get_resource(Econ) is None  # a saved resource the snapshot lacks is gone
    assert b.count(Mind) == 0 and b.count(Links) == 0 and len(b.messages.read(Gift)) == 0
    assert b.state_hash() == a.state_hash() and b.seed == 1 and b.tick == 0


# ------------------------------------------------------------------ damaged and wrong files
@pytest.fixture(scope="module")
def good_snapshot(tmp_path_factory):
    w = make_world(5, n=12)
    w.step(2)
    path = w.save(tmp_path_factory.mktemp("good") / "good.snap")
    return path, path.read_bytes(), w.state_hash()


def _victim() -> World:
    w = make_world(99, n=5)
    w.step(1)
    return w


def _expect_refused(path, needle: str) -> None:
    """Loading fails with SnapshotError naming the file, and a failed restore changes nothing."""
    with pytest.raises(SnapshotError) as e:
        World.load(path, types=TYPES)
    assert str(path) in str(e.value) and needle in str(e.value), str(e.value)
    w = _victim()
    before = w.state_hash()
    with pytest.raises(SnapshotError):
        w.restore(path, types=TYPES)
    assert w.state_hash() == before and w.seed == 99


def test_the_good_snapshot_loads(good_snapshot):
    path, raw, h = good_snapshot
    assert World.load(path, types=TYPES).state_hash() == h


@settings(max_examples=200, deadline=None)
@given(data=st.data(), bit=st.integers(0, 7))
def test_any_flipped_bit_is_detected(good_snapshot, tmp_path_factory, data, bit):
    path, raw, h = good_snapshot
    i = data.draw(st.integers(0, len(raw) - 1))
    bad = bytearray(raw)
    bad[i] ^= 1 << bit
    p = tmp_path_factory.mktemp("flip") / "flipped.snap"
    p.write_bytes(bytes(bad))
    with pytest.raises(SnapshotError) as e:
        World.load(p, types=TYPES)
    assert str(p) in str(e.value)


def test_every_flipped_byte_in_the_manifest_and_trailer_is_detected(good_snapshot, tmp_path):
    """The manifest holds the seed (which the state hash leaves out) and every section's place."""
    path, raw, h = good_snapshot
    (mlen,) = np.frombuffer(raw[-16:-8], dtype="<u8")
    p = tmp_path / "flipped.snap"
    for i in range(len(raw) - 32 - int(mlen) - 8, len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        p.write_bytes(bytes(bad))
        with pytest.raises(SnapshotError) as e:
            World.load(p, types=TYPES)
        assert str(p) in str(e.value), i


def test_flipped_byte_in_a_section_names_it(good_snapshot, tmp_path):
    path, raw, h = good_snapshot
    bad = bytearray(raw)
    bad[40] ^= 0xFF
    p = tmp_path / "bad.snap"
    p.write_bytes(bytes(bad))
    _expect_refused(p, "corrupt snapshot (section")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_truncation_is_detected(good_snapshot, tmp_path_factory, data):
    path, raw, h = good_snapshot
    n = data.draw(st.integers(0, len(raw) - 1))
    p = tmp_path_factory.mktemp("trunc") / "cut.snap"
    p.write_bytes(raw[:n])
    with pytest.raises(SnapshotError) as e:
        World.load(p, types=TYPES)
    assert str(p) in str(e.value) and "truncated" in str(e.value)


def test_truncated_snapshot_is_refused_without_touching_the_world(good_snapshot, tmp_path):
    path, raw, h = good_snapshot
    for n in (3, 100, len(raw) - 1):
        p = tmp_path / f"cut{n}.snap"
        p.write_bytes(raw[:n])
        _expect_refused(p, "truncated")


@pytest.mark.parametrize("kind", ["text", "random", "parquet", "arrow", "other_magic"])
def test_a_file_that_is_not_a_snapshot(tmp_path, kind):
    p = tmp_path / f"{kind}.snap"
    if kind == "text":
        p.write_text("tick,wealth\n1,2\n" * 20)
    elif kind == "random":
        p.write_bytes(np.random.default_rng(0).bytes(500))
    elif kind == "parquet":
        pq.write_table(pa.table({"x": [1, 2, 3]}), p)
    elif kind == "arrow":
        with pa.ipc.new_file(str(p), pa.schema([("x", pa.int64())])) as f:
            f.write_batch(pa.record_batch([pa.array([1])], names=["x"]))
    else:
        p.write_bytes(b"SOCSNAP0" + b"\0" * 100 + b"SOCSEND1")
    _expect_refused(p, "not a Socius snapshot")


def test_a_missing_file_and_a_directory(tmp_path):
    _expect_refused(tmp_path / "nowhere.snap", "no such snapshot file")
    _expect_refused(tmp_path, "is a directory")


# ------------------------------------------------------------------ schema changed since saving
@pytest.fixture()
def saved(tmp_path):
    w = make_world(4, n=8)
    w.step(2)
    return w.save(tmp_path / "w.snap")


def test_component_schema_changed(saved):
    class Agent2(Component):  # the same stable name, a column's dtype changed
        __component_name__ = "snaptest.Agent"
        wealth = Scalar(np.int32, default=5)
        mood = Scalar(np.float32)
        active = Scalar(np.bool_, default=True)

    with pytest.raises(SnapshotError) as e:
        World.load(saved, types=(Agent2, Mind, Links, Gift, Econ))
    msg = str(e.value)
    assert str(saved) in msg and "snaptest.Agent" in msg and "wealth=scalar:<i8" in msg and "<i4" in msg

    class Mind2(Component):  # a column added
        __component_name__ = "snaptest.Mind"
        emb = Vector(np.float16, 4)
        name = String()
        age = Scalar(np.int64)

    with pytest.raises(SnapshotError, match="snaptest.Mind.*schema"):
        World.load(saved, types=(Agent, Mind2, Links, Gift, Econ))


def test_message_schema_changed(saved):
    class Gift2(Message):
        __component_name__ = "snaptest.Gift"
        amount = Scalar(np.float64)
        note = String()
        vec = Vector(np.float32, 2)

    with pytest.raises(SnapshotError, match="messages snaptest.Gift was saved with schema"):
        World.load(saved, types=(Agent, Mind, Links, Gift2, Econ))


@pytest.mark.parametrize("change", ["renamed", "dropped", "added_required", "added_with_default"])
def test_resource_schema_changed(saved, change):
    if change == "renamed":
        class Econ2(Resource):
            __resource_name__ = "snaptest.Econ"
            rate: float = 0.1
            history: list = dataclasses.field(default_factory=list)
            bins: np.ndarray = None
            label: str = ""
    elif change == "dropped":
        class Econ2(Resource):
            __resource_name__ = "snaptest.Econ"
            tax: float = 0.1
            history: list = dataclasses.field(default_factory=list)
    elif change == "added_required":
        class Econ2(Resource):
            __resource_name__ = "snaptest.Econ"
            tax: float
            history: list
            bins: np.ndarray
            label: str
            region: str
    else:  # loads without complaint from the dataclass: must still be refused, naming the resource
        class Econ2(Resource):
            __resource_name__ = "snaptest.Econ"
            tax: float = 0.1
            history: list = dataclasses.field(default_factory=list)
            bins: np.ndarray = None
            label: str = ""
            region: str = "north"

    with pytest.raises(SnapshotError) as e:
        World.load(saved, types=(Agent, Mind, Links, Gift, Econ2))
    msg = str(e.value)
    assert str(saved) in msg and "resource snaptest.Econ" in msg and "tax" in msg
    w = _victim()
    before = w.state_hash()
    with pytest.raises(SnapshotError):
        w.restore(saved, types=(Agent, Mind, Links, Gift, Econ2))
    assert w.state_hash() == before


def test_a_restore_that_misses_the_saved_hash_is_refused_and_rolled_back(saved):
    class Econ3(Resource):  # the same fields, but the code now reads one of them differently
        __resource_name__ = "snaptest.Econ"
        tax: float = 0.1
        history: list = dataclasses.field(default_factory=list)
        bins: np.ndarray = None
        label: str = ""

        @classmethod
        def from_state(cls, state):
            return cls(**{**state, "tax": state["tax"] * 2})

    w = _victim()
    before = (w.state_hash(), w.seed, w.tick, w.next_id, len(w), w.resource(Econ), w.messages.read(Gift))
    with pytest.raises(SnapshotError) as e:
        w.restore(saved, types=(Agent, Mind, Links, Gift, Econ3))
    assert str(saved) in str(e.value) and "state hash" in str(e.value)
    after = (w.state_hash(), w.seed, w.tick, w.next_id, len(w), w.resource(Econ), w.messages.read(Gift))
    assert after[:5] == before[:5] and after[5] is before[5] and after[6] is before[6]
    assert w.get_resource(Econ3) is None
    w.step()  # and the world still runs


def test_unknown_type_names_the_type_and_suggests_types(saved):
    with pytest.raises(SnapshotError) as e:
        World.load(saved)  # explicit names like "snaptest.Agent" cannot be imported
    assert "snaptest." in str(e.value) and "types=" in str(e.value) and str(saved) in str(e.value)


# ------------------------------------------------------------------ when snapshots may be taken
def test_no_snapshot_or_restore_during_a_tick(tmp_path):
    path = make_world(1, n=3).save(tmp_path / "ok.snap")
    errors = []

    @system(name="saver")
    def saver(ctx):
        for call in (lambda: ctx.world.save(tmp_path / "inside.snap"), lambda: ctx.world.restore(path)):
            try:
                call()
            except SnapshotError as e:
                errors.append(str(e))

    w = World()
    w.add_systems(saver)
    w.step()
    assert len(errors) == 2 and "between ticks" in errors[0] and "during a tick" in errors[1]
    assert not (tmp_path / "inside.snap").exists()


def test_no_snapshot_with_unsent_messages(tmp_path):
    w = World()
    w.messages.send(Gift, 0, [1], amount=1)
    with pytest.raises(SnapshotError, match="unsent messages"):
        w.save(tmp_path / "x.snap")


# ------------------------------------------------------------------ atomic writes
def _leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


@pytest.mark.parametrize("where", ["replace", "section", "fsync", "manifest"])
def test_a_failed_write_keeps_the_previous_snapshot_and_leaves_no_temp_file(tmp_path, monkeypatch, where):
    w = make_world(6, n=10)
    w.step(1)
    path = w.save(tmp_path / "run.snap")
    good = w.state_hash()
    w.step(2)
    assert w.state_hash() != good

    class Crash(Exception):
        pass

    def boom(*a, **k):
        raise Crash(where)

    if where == "replace":
        monkeypatch.setattr(snapshot_module.os, "replace", boom)
    elif where == "fsync":
        monkeypatch.setattr(snapshot_module.os, "fsync", boom)
    elif where == "manifest":  # every section is on disk; the manifest write fails
        real_dumps = snapshot_module.json.dumps

        def dumps(obj, *a, **k):
            if isinstance(obj, dict) and "sections" in obj:
                boom()
            return real_dumps(obj, *a, **k)

        monkeypatch.setattr(snapshot_module.json, "dumps", dumps)
    else:
        real = snapshot_module._sections

        def some_sections_then_crash(world):
            for i, sec in enumerate(real(world)):
                if i == 2:
                    raise Crash(where)
                yield sec

        monkeypatch.setattr(snapshot_module, "_sections", some_sections_then_crash)
    with pytest.raises(Crash):
        w.save(path)
    monkeypatch.undo()
    assert _leftovers(tmp_path, "run.snap") == []
    assert World.load(path, types=TYPES).state_hash() == good
    w.save(path)  # and the next save goes through
    assert World.load(path, types=TYPES).state_hash() == w.state_hash()


def test_a_process_killed_mid_write_keeps_the_previous_snapshot(tmp_path):
    w = make_world(7, n=10)
    w.step(1)
    path = w.save(tmp_path / "run.snap")
    good = w.state_hash()
    code = textwrap.dedent(f"""
        import os, importlib.util
        import socius.ecs.snapshot as snap
        spec = importlib.util.spec_from_file_location("snaptest_mod", {__file__!r})
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        w = mod.make_world(7, n=10)
        w.step(3)
        real = snap._sections
        def die_midway(world):
            for i, s in enumerate(real(world)):
                if i == 2:
                    os._exit(9)   # no cleanup, no finally: like a kill -9 or a power cut
                yield s
        snap._sections = die_midway
        w.save({str(path)!r})
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 9, out.stderr
    assert World.load(path, types=TYPES).state_hash() == good
    temps = _leftovers(tmp_path, "run.snap")
    assert len(temps) == 1 and temps[0].startswith(".run.snap.tmp-")  # the dead writer's, never the target
    w.step(1)
    w.save(path)
    assert World.load(path, types=TYPES).state_hash() == w.state_hash()
    assert _leftovers(tmp_path, "run.snap") == []  # the next save removed the dead writer's file


class Killed(BaseException):
    """The process died: nothing catches it, and no later file-system call succeeds."""


def _kill_at(monkeypatch, folder, at: int, steps: list) -> None:
    """File-system mutations under ``folder`` (open for writing, replace, rename, unlink, mkdir) are
    steps; the ``at``-th (0-based) and every later one raise :class:`Killed` — a kill -9 there."""
    import builtins
    import io
    root = os.path.join(str(folder), "")

    def step(name, path):
        if os.path.join(os.fspath(path), "").startswith(root):
            if len(steps) >= at:
                raise Killed(f"{name} {path}")
            steps.append(f"{name} {os.path.basename(os.fspath(path))}")

    for name in ("replace", "rename", "unlink", "mkdir"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda p, *a, _n=name, _r=real, **k: (step(_n, p), _r(p, *a, **k))[1])
    real_open = io.open

    def opener(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+"):
            step("open", file)
        return real_open(file, mode, *a, **k)
    monkeypatch.setattr(io, "open", opener)
    monkeypatch.setattr(builtins, "open", opener)


def test_a_crash_at_any_step_of_a_save_leaves_the_old_or_the_new_snapshot(tmp_path, monkeypatch):
    straight = make_world(8, n=10)
    straight.step(5)
    outcomes = []
    for at in range(20):
        folder = tmp_path / str(at)
        w = make_world(8, n=10)
        w.step(2)
        path = w.save(folder / "run.snap")
        old = w.state_hash()
        w.step(1)
        new = w.state_hash()
        steps: list = []
        with monkeypatch.context() as mp:
            _kill_at(mp, folder, at, steps)
            try:
                w.save(path)
                done = True
            except Killed:
                done = False
        resumed = fresh_world_with_systems()
        resumed.restore(path)  # never unreadable: the old state or the new one, whole
        assert resumed.state_hash() in (old, new), (at, steps)
        outcomes.append(resumed.state_hash() == new)
        assert outcomes[-1] == done or steps[-1].startswith("unlink"), (at, steps)
        resumed.step(5 - resumed.tick)
        assert_same_state(resumed, straight)
        resumed.save(path)  # the next save goes through and tidies what the crash left
        assert _leftovers(folder, "run.snap") == []
        if done:
            break
    assert len(steps) >= 2 and not all(outcomes) and outcomes[-1], (steps, outcomes)
