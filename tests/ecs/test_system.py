"""Systems, the schedule's ordering contract, and declared-access enforcement."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from socius.ecs import (DEFAULT_PHASES, AccessError, Component, Message, Resource, Scalar, Schedule, SchemaError,
                        System, World, system)


class Wealth(Component):
    value = Scalar(np.int64)


class Health(Component):
    hp = Scalar(np.float64)


class Params(Resource):
    rate: float = 0.5


class Secret(Resource):
    code: int = 42


class Chat(Message):
    topic = Scalar(np.int32)


class Poke(Message):
    pass


# ------------------------------------------------------------------ declarations
def test_system_decorator_records_declared_access():
    @system(phase="post", reads=(Health,), writes=(Wealth,), resources=(Params,), sends=(Chat,),
            receives=(Poke,), name="custom")
    def f(ctx):
        return 1

    assert isinstance(f, System) and f.name == "custom" and f.phase == "post"
    assert f.reads == {Health} and f.writes == {Wealth} and f.resources == {Params}
    assert f.sends == {Chat} and f.receives == {Poke}
    assert system(lambda ctx: None).phase == "update"


@pytest.mark.parametrize("kw, needle", [
    ({"reads": ("Wealth",)}, "reads"), ({"writes": (int,)}, "writes"), ({"resources": (Params(),)}, "resources"),
    ({"sends": (Wealth,)}, "sends"), ({"receives": (Chat, 3)}, "receives"),
])
def test_bad_declarations_raise_schema_error_naming_the_system(kw, needle):
    with pytest.raises(SchemaError) as e:
        @system(**kw)
        def badly_declared(ctx):
            pass
    assert "badly_declared" in str(e.value) and needle in str(e.value)


# ------------------------------------------------------------------ schedule order
@settings(max_examples=30, deadline=None)
@given(plan=st.lists(st.sampled_from(DEFAULT_PHASES), min_size=1, max_size=10))
def test_phases_run_in_order_and_systems_in_insertion_order_within_a_phase(plan):
    log = []
    w = World()
    for i, phase in enumerate(plan):
        w.add_systems(system(lambda ctx, i=i: log.append(i), phase=phase, name=f"s{i}"))
    w.step(2)
    expect = [i for p in DEFAULT_PHASES for i, ph in enumerate(plan) if ph == p]
    assert log == expect * 2
    assert [s.name for s in w.schedule.systems()] == [f"s{i}" for i in expect]


def test_custom_phases_phase_override_and_plain_functions():
    log = []
    sched = Schedule(phases=("load", "think", "store"))
    w = World(schedule=sched)

    @system(phase="store")
    def store(ctx):
        log.append("store")

    def think(ctx):
        log.append(f"think@{ctx.tick}")

    w.add_systems(store)
    w.add_systems(think, phase="think")
    w.add_systems(system(lambda ctx: log.append("load"), name="load_it"), phase="load")
    w.step()
    assert log == ["load", "think@0", "store"]
    assert [s.name for s in sched.in_phase("think")] == ["think"]


def test_schedule_refuses_unknown_phases_duplicate_names_and_bad_phase_lists():
    w = World()
    with pytest.raises(SchemaError, match="unknown phase 'later'.*pre, update, post"):
        w.add_systems(system(lambda ctx: None, phase="later", name="x"))
    w.add_systems(system(lambda ctx: None, name="dup"))
    with pytest.raises(SchemaError, match="'dup' is already"):
        w.add_systems(system(lambda ctx: None, phase="post", name="dup"))
    for bad in ((), ("a", "a")):
        with pytest.raises(SchemaError, match="unique and non-empty"):
            Schedule(phases=bad)


def test_hooks_see_every_system_every_tick():
    w = World()
    w.add_systems(system(lambda ctx: None, name="a"), system(lambda ctx: None, name="b", phase="pre"))
    seen = []
    w.schedule.hooks.append(lambda s, dt: seen.append((s.name, dt >= 0)))
    w.step(2)
    assert seen == [("b", True), ("a", True)] * 2


def test_context_exposes_tick_rng_and_generator_of_this_tick():
    got = []

    @system(reads=(Wealth,))
    def draw(ctx):
        v = ctx.query(Wealth)
        got.append((ctx.tick, ctx.rng("s").random(v.ids), ctx.generator("g").random()))

    w = World(seed=9)
    w.spawn(5, {Wealth: {}})
    w.add_systems(draw)
    w.step(2)
    for tick, r, g in got:
        assert np.array_equal(r, w.rng("s", tick=tick).random(w.entities))
        assert g == w.generator("g", tick=tick).random()
    assert not np.array_equal(got[0][1], got[1][1])


# ------------------------------------------------------------------ access enforcement
def _run(*systems, setup=None):
    w = World()
    w.spawn(3, {Wealth: {"value": 1}, Health: {"hp": 1.0}})
    w.insert_resource(Params())
    w.insert_resource(Secret())
    w.add_systems(*systems)
    w.step()
    return w


def test_query_of_an_undeclared_component_is_refused():
    @system(reads=(Wealth,))
    def snoop(ctx):
        ctx.query(Wealth, Health)

    with pytest.raises(AccessError) as e:
        _run(snoop)
    assert "snoop" in str(e.value) and "Health" in str(e.value) and "reads=" in str(e.value)


@pytest.mark.parametrize("how", ["set", "write"])
def test_writing_a_component_declared_read_only_is_refused_and_nothing_is_written(how):
    @system(reads=(Wealth, Health), writes=(Health,))
    def thief(ctx):
        v = ctx.query(Wealth, Health)
        v.set(Health, hp=v[Health].hp * 2)  # declared: fine
        if how == "set":
            v.set(Wealth, value=v[Wealth].value + 100)
        else:
            with v.write(Wealth) as p:
                p.value = p.value + 100

    w = World()
    w.spawn(3, {Wealth: {"value": 1}, Health: {"hp": 1.0}})
    w.add_systems(thief)
    with pytest.raises(AccessError, match=r"writes=\(Wealth,\)"):
        w.step()
    assert w.get(Wealth, "value").tolist() == [1, 1, 1]
    assert w.get(Health, "hp").tolist() == [2.0, 2.0, 2.0]


def test_undeclared_resource_is_refused_declared_one_is_served():
    @system(resources=(Params,))
    def uses(ctx):
        assert ctx.resource(Params).rate == 0.5
        ctx.resource(Secret)

    with pytest.raises(AccessError) as e:
        _run(uses)
    assert "uses" in str(e.value) and "Secret" in str(e.value) and "resources=" in str(e.value)


def test_undeclared_send_is_refused_and_nothing_is_sent():
    @system(sends=(Chat,))
    def talk(ctx):
        ctx.send(Chat, [0], topic=1)
        ctx.send(Poke, [0])

    w = World()
    w.add_systems(talk)
    with pytest.raises(AccessError) as e:
        w.step()
    assert "talk" in str(e.value) and "Poke" in str(e.value) and "sends=" in str(e.value)
    assert Poke not in w.messages.outbox


def test_undeclared_read_is_refused():
    @system(receives=(Chat,))
    def listen(ctx):
        assert len(ctx.read(Chat)) == 0
        ctx.read(Poke)

    with pytest.raises(AccessError) as e:
        _run(listen)
    assert "listen" in str(e.value) and "Poke" in str(e.value) and "receives=" in str(e.value)


def test_access_errors_are_permission_errors():
    @system()
    def nothing_declared(ctx):
        ctx.query(Wealth)

    with pytest.raises(PermissionError):
        _run(nothing_declared)


def test_missing_resource_raises_resource_error_naming_the_type():
    from socius.ecs import ResourceError

    class Absent(Resource):
        x: int = 0

    @system(resources=(Absent,))
    def needs(ctx):
        ctx.resource(Absent)

    with pytest.raises(ResourceError, match="Absent"):
        _run(needs)
