"""Queries checked against a plain dict-of-dicts model, plus views, caching and staleness.

The stateful test drives a world through random spawns, despawns, component
adds/removes and column writes — through the world API, through query views
(``set``, ``write``, ``filter``) and through commands queued by a system — and
after every step compares every query (with ``without=``, ``where=`` and
``filter``) with what the model says: the same IDs and the same values in
scalar, vector, string and ragged columns.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from socius.ecs import (AccessError, Component, Query, Ragged, RaggedArray, Scalar, StaleViewError, String,
                        UnknownComponentError, Vector, World, system)
import socius.ecs.query as query_module


class Pos(Component):
    xy = Vector(np.float64, 2)
    kind = Scalar(np.int32)


class Name(Component):
    text = String()


class Tags(Component):
    ids = Ragged(np.int64)


class Frozen(Component):
    since = Scalar(np.int64)


COMPS = (Pos, Name, Tags, Frozen)
DEFAULTS = {Pos: {"xy": (0.0, 0.0), "kind": 0}, Name: {"text": ""}, Tags: {"ids": ()}, Frozen: {"since": 0}}

# ------------------------------------------------------------------ value strategies (model form)
COLUMN_ST = {
    "xy": st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.floats(-1e6, 1e6, allow_nan=False)),
    "kind": st.integers(-5, 5),
    "text": st.text(st.characters(exclude_categories=("Cs",)), max_size=5),
    "ids": st.lists(st.integers(-2**40, 2**40), max_size=4).map(tuple),
    "since": st.integers(0, 100),
}


def to_kernel(col: str, vals: list, how: int):
    """Model values -> one of the accepted input forms of the column."""
    n = len(vals)
    if col == "xy":
        return np.array(vals, dtype=np.float64).reshape(n, 2)
    if col == "ids":
        return [list(v) for v in vals] if how % 2 else RaggedArray.from_lists([list(v) for v in vals], np.int64)
    if col == "text":
        return list(vals) if how % 2 else np.array(vals, dtype=np.dtypes.StringDType())
    return list(vals) if how % 2 else np.array(vals, dtype=np.int64)


def from_kernel(col: str, arr) -> list:
    if col == "xy":
        return [tuple(r) for r in arr.tolist()]
    if col == "ids":
        return [tuple(r) for r in arr.to_lists()]
    return arr.tolist()


def draw_values(data, comp, n: int) -> dict[str, list]:
    """Model values for some (maybe none) of ``comp``'s columns for ``n`` rows."""
    cols = data.draw(st.lists(st.sampled_from(list(comp.columns())), unique=True))
    return {c: data.draw(st.lists(COLUMN_ST[c], min_size=n, max_size=n)) for c in cols}


def kernel_values(values: dict[str, list], how: int) -> dict:
    return {c: to_kernel(c, v, how) for c, v in values.items()}


# ------------------------------------------------------------------ query specs and their model
def kind_positive(v):
    return v[Pos].kind > 0


def has_tags(v):
    return v[Tags].ids.lengths >= 1


WHERE_MODEL = {None: lambda row: True, kind_positive: lambda row: row[Pos]["kind"] > 0,
               has_tags: lambda row: len(row[Tags]["ids"]) >= 1}

SPECS = [
    ((Pos,), (), None), ((Name,), (), None), ((Tags,), (), None), ((Frozen,), (), None),
    ((Pos, Name), (), None), ((Tags, Pos, Name), (), None), ((Name,), (Frozen,), None),
    ((Pos, Tags), (Frozen, Name), None), ((Pos,), (), kind_positive), ((Name, Tags), (Frozen,), has_tags),
]
# built once at import and reused by every world of every example: their caches must never leak
BUILT = [Query(*c, without=w, where=f) for c, w, f in SPECS]


def model_ids(model: dict, comps, without, where) -> list[int]:
    pred = WHERE_MODEL[where]
    return sorted(i for i, row in model.items()
                  if all(c in row for c in comps) and not any(c in row for c in without) and pred(row))


def check_view(view, model: dict, comps, expect_ids) -> None:
    assert view.ids.tolist() == expect_ids
    assert len(view) == len(expect_ids)
    for c in comps:
        for col in c.columns():
            got = from_kernel(col, view[c][col])
            assert got == [model[i][c][col] for i in expect_ids], (c, col)


class Pending:
    """A plain resource: the operations the queuing system will turn into commands this tick."""

    def __init__(self):
        self.ops: list[tuple] = []
        self.seen_before: list | None = None
        self.seen_same_phase: list | None = None
        self.seen_next_phase: list | None = None


def _spec_ids(ctx) -> list[list[int]]:
    return [ctx.query(*c, without=w, where=f).ids.tolist() for c, w, f in SPECS]


@system(phase="update", reads=COMPS, writes=COMPS)
def queue_ops(ctx):
    p = ctx.world.resource(Pending)
    p.seen_before = _spec_ids(ctx)
    for op in p.ops:
        kind = op[0]
        if kind == "spawn":
            got = ctx.commands.spawn(op[1], {c: kernel_values(v, op[3]) for c, v in op[2].items()})
            assert got.tolist() == op[4]  # IDs are reserved, deterministically, at queue time
        elif kind == "despawn":
            ctx.commands.despawn(op[1])
        elif kind == "add":
            ctx.commands.add(op[1], op[2], **kernel_values(op[3], op[4]))
        else:
            ctx.commands.remove(op[1], op[2])
    assert _spec_ids(ctx) == p.seen_before  # queued commands are invisible to the system that queued them


@system(phase="update", reads=COMPS)
def look_same_phase(ctx):
    ctx.world.resource(Pending).seen_same_phase = _spec_ids(ctx)


@system(phase="post", reads=COMPS)
def look_next_phase(ctx):
    ctx.world.resource(Pending).seen_next_phase = _spec_ids(ctx)


class WorldVersusModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.world = World(seed=5)
        self.world.insert_resource(Pending())
        self.world.add_systems(queue_ops, look_same_phase, look_next_phase)
        self.model: dict[int, dict] = {}
        self.next_id = 0

    # ---------------------------------------------------------------- helpers
    def live(self) -> list[int]:
        return sorted(self.model)

    def holders(self, comp) -> list[int]:
        return sorted(i for i, row in self.model.items() if comp in row)

    def pick(self, data, pool, min_size=0):
        return data.draw(st.lists(st.sampled_from(pool), unique=True, min_size=min_size)) if pool else []

    def model_add(self, ids, comp, values: dict[str, list]) -> None:
        for k, i in enumerate(ids):
            if i in self.model:
                row = dict(DEFAULTS[comp])
                row.update({c: v[k] for c, v in values.items()})
                self.model[i][comp] = row

    def model_spawn(self, n: int, comps: dict) -> list[int]:
        ids = list(range(self.next_id, self.next_id + n))
        self.next_id += n
        for i in ids:
            self.model[i] = {}
        for comp, values in comps.items():
            self.model_add(ids, comp, values)
        return ids

    def draw_spawn(self, data):
        n = data.draw(st.integers(0, 4))
        comps = data.draw(st.lists(st.sampled_from(COMPS), unique=True))
        return n, {c: draw_values(data, c, n) for c in comps}

    # ---------------------------------------------------------------- world API
    @rule(data=st.data(), how=st.integers(0, 1))
    def spawn(self, data, how):
        n, comps = self.draw_spawn(data)
        got = self.world.spawn(n, {c: kernel_values(v, how) for c, v in comps.items()})
        assert got.tolist() == self.model_spawn(n, comps)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def despawn(self, data):
        ids = self.pick(data, self.live())
        self.world.despawn(np.array(ids, dtype=np.int64))
        for i in ids:
            del self.model[i]

    @precondition(lambda self: self.model)
    @rule(data=st.data(), comp=st.sampled_from(COMPS), how=st.integers(0, 1))
    def add_component(self, data, comp, how):
        ids = self.pick(data, self.live())
        values = draw_values(data, comp, len(ids))
        self.world.add_component(np.array(ids, dtype=np.int64), comp, **kernel_values(values, how))
        self.model_add(ids, comp, values)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), comp=st.sampled_from(COMPS))
    def remove_component(self, data, comp):
        ids = self.pick(data, self.live())  # entities without the component are fine: nothing to remove
        self.world.remove_component(np.array(ids, dtype=np.int64), comp)
        for i in ids:
            self.model[i].pop(comp, None)

    @rule(data=st.data(), comp=st.sampled_from(COMPS), how=st.integers(0, 1))
    def world_set(self, data, comp, how):
        ids = data.draw(st.permutations(self.pick(data, self.holders(comp))))
        values = draw_values(data, comp, len(ids))
        self.world.set(comp, np.array(ids, dtype=np.int64), **kernel_values(values, how))
        for k, i in enumerate(ids):
            self.model[i][comp].update({c: v[k] for c, v in values.items()})

    # ---------------------------------------------------------------- through views
    @rule(data=st.data(), spec=st.integers(0, len(SPECS) - 1), built=st.booleans(), how=st.integers(0, 1))
    def view_set(self, data, spec, built, how):
        comps, without, where = SPECS[spec]
        view = BUILT[spec].fetch(self.world) if built else self.world.query(*comps, without=without, where=where)
        expect = model_ids(self.model, comps, without, where)
        assert view.ids.tolist() == expect
        mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(expect), max_size=len(expect))), dtype=bool)
        sub = view.filter(mask)
        ids = [i for i, m in zip(expect, mask) if m]
        check_view(sub, self.model, comps, ids)
        comp = data.draw(st.sampled_from(comps))
        values = draw_values(data, comp, len(ids))
        sub.set(comp, **kernel_values(values, how))
        for k, i in enumerate(ids):
            self.model[i][comp].update({c: v[k] for c, v in values.items()})

    @rule(data=st.data(), filtered=st.booleans(), delta=st.integers(-3, 3))
    def view_write(self, data, filtered, delta):
        view = self.world.query(Pos, Name)
        ids = model_ids(self.model, (Pos, Name), (), None)
        if filtered:
            mask = np.array([i % 2 == 0 for i in ids], dtype=bool)
            view = view.filter(mask)
            ids = [i for i in ids if i % 2 == 0]
        texts = data.draw(st.lists(COLUMN_ST["text"], min_size=len(ids), max_size=len(ids)))
        with view.write(Pos) as p:
            p.kind += delta          # in place
            p.xy[:, 1] *= 2.0
        with view.write(Name, "text") as p:
            p.text = np.array(texts, dtype=np.dtypes.StringDType())  # rebound
        for i, t in zip(ids, texts):
            row = self.model[i]
            row[Pos]["kind"] += delta
            row[Pos]["xy"] = (row[Pos]["xy"][0], row[Pos]["xy"][1] * 2.0)
            row[Name]["text"] = t

    # ---------------------------------------------------------------- queued commands in a system
    @rule(data=st.data())
    def queued_commands(self, data):
        pending = self.world.resource(Pending)
        before = {i: {c: dict(v) for c, v in row.items()} for i, row in self.model.items()}
        candidates = self.live()
        for _ in range(data.draw(st.integers(0, 5))):
            kind = data.draw(st.sampled_from(["spawn", "despawn", "add", "remove"]))
            if kind == "spawn":
                n, comps = self.draw_spawn(data)
                ids = self.model_spawn(n, comps)
                pending.ops.append(("spawn", n, comps, data.draw(st.integers(0, 1)), ids))
                candidates += ids  # later commands of the same queue may name the new entities
                continue
            ids = self.pick(data, candidates)
            if kind == "despawn":
                pending.ops.append(("despawn", np.array(ids, dtype=np.int64)))
                for i in ids:
                    self.model.pop(i, None)  # a second despawn in the same queue is a no-op
            elif kind == "add":
                comp = data.draw(st.sampled_from(COMPS))
                values = draw_values(data, comp, len(ids))
                pending.ops.append(("add", np.array(ids, dtype=np.int64), comp, values, data.draw(st.integers(0, 1))))
                self.model_add(ids, comp, values)  # entities despawned earlier in the queue are skipped
            else:
                comp = data.draw(st.sampled_from(COMPS))
                pending.ops.append(("remove", np.array(ids, dtype=np.int64), comp))
                for i in ids:
                    if i in self.model:
                        self.model[i].pop(comp, None)
        self.world.step()
        pending.ops = []
        expect_before = [model_ids(before, c, w, f) for c, w, f in SPECS]
        expect_after = [model_ids(self.model, c, w, f) for c, w, f in SPECS]
        assert pending.seen_before == expect_before
        assert pending.seen_same_phase == expect_before   # a later system of the same phase: not yet
        assert pending.seen_next_phase == expect_after    # the next phase: after the sync point

    # ---------------------------------------------------------------- invariants
    @invariant()
    def queries_match_the_model(self):
        w = self.world
        assert w.entities.tolist() == self.live()
        assert w.next_id == self.next_id
        for spec, built in zip(SPECS, BUILT):
            comps, without, where = spec
            expect = model_ids(self.model, comps, without, where)
            check_view(built.fetch(w), self.model, comps, expect)
            one_off = w.query(*comps, without=without, where=where)
            mask = (one_off.ids % 3) == 1
            check_view(one_off.filter(mask), self.model, comps, [i for i in expect if i % 3 == 1])
        for c in COMPS:
            holders = self.holders(c)
            assert w.ids_of(c).tolist() == holders and w.count(c) == len(holders)
            assert w.has(self.live(), c).tolist() == [c in self.model[i] for i in self.live()]
            for col in c.columns():
                assert from_kernel(col, w.get(c, col)) == [self.model[i][c][col] for i in holders]


WorldVersusModel.TestCase.settings = settings(max_examples=80, stateful_step_count=30, deadline=None)
TestWorldVersusModel = WorldVersusModel.TestCase


# ------------------------------------------------------------------ views: read-only, write-back, errors
def _world():
    w = World()
    ids = w.spawn(4, {Pos: {"xy": np.arange(8.0).reshape(4, 2), "kind": [1, -1, 2, 0]},
                      Name: {"text": ["a", "b", "c", "d"]}, Tags: {"ids": [[1], [], [2, 3], [4]]}})
    w.add_component(ids[[1, 3]], Frozen, since=[5, 6])
    return w, ids


@pytest.mark.parametrize("partial", [False, True])
def test_view_columns_are_read_only_for_every_kind(partial):
    w, ids = _world()
    v = w.query(Pos, Name, Tags, without=(Frozen,) if partial else ())
    assert len(v) == (2 if partial else 4)
    with pytest.raises(ValueError):
        v[Pos].kind[0] = 9
    with pytest.raises(ValueError):
        v[Pos].xy[0, 0] = 9
    with pytest.raises(ValueError):
        v[Name].text[0] = "z"
    tags = v[Tags].ids
    with pytest.raises(ValueError):
        tags.values[0] = 9
    with pytest.raises(ValueError):
        tags.offsets[1] = 0
    with pytest.raises(ValueError):
        v.ids[0] = 9
    assert w.get(Tags, "ids").to_lists() == [[1], [], [2, 3], [4]]
    assert w.get(Pos, "kind").tolist() == [1, -1, 2, 0]


def test_view_set_on_a_joined_subset_writes_only_those_rows():
    w, ids = _world()
    v = w.query(Pos, Tags, without=(Frozen,))
    assert v.ids.tolist() == [0, 2]
    v.set(Pos, kind=[10, 20])
    v.set(Tags, ids=[[7], [8, 9]])
    assert w.get(Pos, "kind").tolist() == [10, -1, 20, 0]
    assert w.get(Tags, "ids").to_lists() == [[7], [], [8, 9], [4]]


def test_ragged_values_written_through_a_view_are_not_aliased_to_the_callers_array():
    w, ids = _world()
    r = RaggedArray.from_lists([[1], [2], [3], [4]], np.int64)
    w.query(Tags).set(Tags, ids=r)
    r.values[:] = 0
    assert w.get(Tags, "ids").to_lists() == [[1], [2], [3], [4]]
    w.set(Tags, ids, ids=r)
    r.values[:] = 5
    assert w.get(Tags, "ids").to_lists() == [[0], [0], [0], [0]]


def test_where_and_filter():
    w, ids = _world()
    v = w.query(Pos, where=kind_positive)
    assert v.ids.tolist() == [0, 2] and v[Pos].kind.tolist() == [1, 2]
    f = w.query(Pos, Name).filter(np.array([True, False, False, True]))
    assert f.ids.tolist() == [0, 3] and f[Name].text.tolist() == ["a", "d"]
    assert f.filter(np.array([False, True]))[Pos].xy.tolist() == [[6.0, 7.0]]
    assert v.rows_of(np.array([2, 1]))[1].tolist() == [True, False]
    for bad in (np.array([1, 0, 1, 0]), np.array([True, False])):
        with pytest.raises(ValueError, match=r"bool mask of shape \(4,\)"):
            w.query(Pos).filter(bad)


def test_view_errors_name_the_component_and_column():
    w, ids = _world()
    v = w.query(Pos)
    with pytest.raises(UnknownComponentError, match="Name is not part of this query"):
        v[Name]
    with pytest.raises(UnknownComponentError, match="'speed'"):
        v[Pos].speed
    with pytest.raises(UnknownComponentError, match="'speed'"):
        v.set(Pos, speed=1)
    with pytest.raises(Exception, match="Pos.kind") as e:
        v.set(Pos, kind=[0.5] * 4)
    assert type(e.value).__name__ == "ColumnTypeError"
    with pytest.raises(Exception, match="Pos.xy") as e:
        v.set(Pos, xy=np.zeros((4, 3)))
    assert type(e.value).__name__ == "ColumnShapeError"
    with pytest.raises(Exception, match="Pos.kind") as e:
        v.set(Pos, kind=[1, 2, 3])
    assert type(e.value).__name__ == "ColumnShapeError"
    with pytest.raises(ValueError, match="at least one"):
        Query()
    with pytest.raises(UnknownComponentError, match="not a Component"):
        Query(Pos, without=(int,))


# ------------------------------------------------------------------ stale views
@pytest.mark.parametrize("change", ["spawn", "despawn", "add", "remove", "restore"])
def test_a_view_used_after_a_structural_change_raises_stale_view_error(change, tmp_path):
    w, ids = _world()
    saved = w.save(tmp_path / "w.snap") if change == "restore" else None
    v = w.query(Pos, Name)
    untouched = w.query(Frozen)
    {"spawn": lambda: w.spawn(1, {Pos: {}}), "despawn": lambda: w.despawn(ids[:1]),
     "add": lambda: w.add_component(w.spawn(1), Pos), "remove": lambda: w.remove_component(ids[2:3], Pos),
     "restore": lambda: w.restore(saved)}[change]()
    with pytest.raises(StaleViewError, match="Pos"):
        v[Pos].kind
    for call in (lambda: v.set(Pos, kind=0), lambda: v.get(Pos, "xy"), lambda: v.write(Pos).__enter__()):
        with pytest.raises(StaleViewError, match="fetch the query again"):
            call()
    if change not in ("restore",):
        assert untouched[Frozen].since.tolist() == [5, 6]  # its table did not change structure
    fresh = w.query(Pos, Name)
    assert fresh[Pos].kind.shape == (len(fresh),)


def test_a_view_stays_stale_after_restoring_a_snapshot_without_its_component(tmp_path):
    other = World()
    other.spawn(5, {Pos: {}})
    path = other.save(tmp_path / "no_frozen.snap")  # Frozen was never registered there
    w, ids = _world()
    v = w.query(Frozen)
    w.restore(path, types=(Pos,))
    assert w.count(Frozen) == 0
    w.add_component([0], Frozen, since=1)  # the new table changes structure once, like the old one had
    with pytest.raises(StaleViewError, match="Frozen"):
        v[Frozen].since
    assert w.query(Frozen).ids.tolist() == [0]


def test_value_writes_do_not_make_views_stale():
    w, ids = _world()
    v = w.query(Pos)
    w.set(Pos, ids[:1], kind=42)
    v.set(Pos, xy=0.0)
    assert v[Pos].kind.tolist() == [42, -1, 2, 0] and (v[Pos].xy == 0).all()


# ------------------------------------------------------------------ query cache
def test_built_query_recomputes_after_structural_changes():
    w, ids = _world()
    q = Query(Pos, without=(Frozen,))
    assert q.fetch(w).ids.tolist() == [0, 2]
    w.remove_component(ids[1:2], Frozen)
    assert q.fetch(w).ids.tolist() == [0, 1, 2]
    w.despawn(ids[:1])
    assert q.fetch(w).ids.tolist() == [1, 2]


def test_built_query_cache_is_per_world_even_if_addresses_are_reused(monkeypatch):
    # CPython reuses a freed object's address; simulate that by making every world look alike to id()
    monkeypatch.setattr(query_module, "id", lambda obj: 0, raising=False)
    q = Query(Pos)
    a, b = World(), World()
    a.spawn(3, {Pos: {}})
    b.spawn(5, {Pos: {"kind": 7}})  # the same table versions as in a
    assert len(q.fetch(a)) == 3
    vb = q.fetch(b)
    assert len(vb) == 5 and vb[Pos].kind.tolist() == [7] * 5


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(0, 6), min_size=2, max_size=6))
def test_built_query_over_a_sequence_of_worlds(sizes):
    q = Query(Pos, Name)
    for n in sizes:
        w = World()
        w.spawn(n, {Pos: {"kind": n}, Name: {"text": str(n)}})
        v = q.fetch(w)
        assert len(v) == n and v[Pos].kind.tolist() == [n] * n and v[Name].text.tolist() == [str(n)] * n
        del w, v


def test_context_query_checks_access():
    @system(reads=(Pos,))
    def peek(ctx):
        ctx.query(Pos, without=(Frozen,))

    w = World()
    w.add_systems(peek)
    with pytest.raises(AccessError, match="peek queries .*Frozen"):
        w.step()
