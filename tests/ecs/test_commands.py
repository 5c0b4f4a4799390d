"""Deferred commands: invisible until the sync point at the end of the phase, applied in order."""
import numpy as np
import pytest

from socius.ecs import (ColumnTypeError, Component, DeadEntityError, Scalar, SnapshotError, String, World,
                        system)


class Wealth(Component):
    value = Scalar(np.int64)


class Employed(Component):
    since = Scalar(np.int64)


class Label(Component):
    text = String()


ALL = (Wealth, Employed, Label)


class Log:
    """A plain resource the observing systems write what they saw into."""

    def __init__(self):
        self.seen: dict[str, tuple] = {}


def _observer(name: str, phase: str):
    @system(phase=phase, reads=ALL, name=name)
    def look(ctx):
        ctx.world.resource(Log).seen[name] = (
            ctx.query(Wealth).ids.tolist(), ctx.query(Employed).ids.tolist(), len(ctx.world))
    return look


@pytest.mark.parametrize("op", ["spawn", "despawn", "add", "remove"])
def test_commands_are_invisible_later_in_the_same_phase_and_visible_in_the_next(op):
    w = World()
    w.spawn(4, {Wealth: {"value": [1, 2, 3, 4]}})
    w.add_component([1, 2], Employed, since=0)
    w.insert_resource(Log())

    @system(phase="update", writes=ALL, reads=ALL)
    def change(ctx):
        if ctx.tick:
            return
        before = ctx.query(Wealth).ids.tolist(), ctx.query(Employed).ids.tolist(), len(ctx.world)
        if op == "spawn":
            ctx.commands.spawn(2, {Wealth: {"value": 9}, Employed: {"since": ctx.tick}})
        elif op == "despawn":
            ctx.commands.despawn([0, 2])
        elif op == "add":
            ctx.commands.add([0, 3], Employed, since=5)
        else:
            ctx.commands.remove([1], Employed)
        after = ctx.query(Wealth).ids.tolist(), ctx.query(Employed).ids.tolist(), len(ctx.world)
        assert before == after  # not even the system that queued them sees the change
        ctx.world.resource(Log).seen["queuer"] = before

    w.add_systems(_observer("early", "update"), change, _observer("later", "update"), _observer("next", "post"))
    w.step()
    seen = w.resource(Log).seen
    old = ([0, 1, 2, 3], [1, 2], 4)
    new = {"spawn": ([0, 1, 2, 3, 4, 5], [1, 2, 4, 5], 6), "despawn": ([1, 3], [1], 2),
           "add": ([0, 1, 2, 3], [0, 1, 2, 3], 4), "remove": ([0, 1, 2, 3], [2], 4)}[op]
    assert seen["early"] == seen["queuer"] == seen["later"] == old
    assert seen["next"] == new
    assert (w.ids_of(Wealth).tolist(), w.ids_of(Employed).tolist(), len(w)) == new
    w.step()  # the next tick's first phase sees them too
    assert seen["early"] == new


def test_spawned_ids_are_reserved_at_queue_time_and_later_commands_may_use_them():
    """The module docstring's example: spawn, then add a component to the new IDs in the same queue."""
    out = {}

    @system(writes=ALL)
    def hire(ctx):
        if ctx.tick == 0:
            ids = ctx.commands.spawn(3, {Wealth: {"value": 1}})
            out["ids"] = ids.tolist()
            out["next_id"] = ctx.world.next_id
            ctx.commands.add(ids[[2, 0]], Employed, since=ctx.tick)
            ctx.commands.add(ids[1:2], Label, text="new")
            ctx.commands.remove(ids[1:2], Wealth)
            ctx.commands.despawn(ids[2:3])

    w = World()
    w.spawn(2)
    w.add_systems(hire)
    w.step()
    assert out == {"ids": [2, 3, 4], "next_id": 5}
    assert w.entities.tolist() == [0, 1, 2, 3]
    assert w.ids_of(Wealth).tolist() == [2] and w.ids_of(Employed).tolist() == [2]
    assert w.get(Label, "text").tolist() == ["new"]


def test_queue_applies_in_issue_order():
    w = World()
    ids = w.spawn(3, {Wealth: {"value": 0}})
    c = w.commands
    c.despawn(ids[:1])
    c.add(ids[:2], Employed, since=[1, 2])   # 0 was despawned earlier in the queue: skipped
    c.remove(ids[1:2], Employed)             # removed again right after
    c.add(ids[2:], Employed, since=7)
    c.despawn(ids[:1])                       # a second despawn of the same entity: no-op
    assert len(c) == 5 and len(w) == 3
    assert c.apply() == 5 and len(c) == 0
    assert w.entities.tolist() == [1, 2]
    assert w.ids_of(Employed).tolist() == [2] and w.get(Employed, "since").tolist() == [7]


def test_add_through_commands_replaces_values_of_existing_holders():
    w = World()
    ids = w.spawn(3)
    w.add_component(ids, Employed, since=[1, 2, 3])
    w.commands.add(ids[[2, 0]], Employed, since=[30, 10])
    w.commands.apply()
    assert w.get(Employed, "since").tolist() == [10, 2, 30]


def test_values_and_ids_are_validated_when_queued():
    seen = {}

    @system(writes=ALL)
    def bad(ctx):
        for name, call in [("type", lambda: ctx.commands.spawn(2, {Wealth: {"value": [0.5, 1.5]}})),
                           ("dead", lambda: ctx.commands.despawn([0, 99])),
                           ("dead_add", lambda: ctx.commands.add([5], Employed)),
                           ("dead_remove", lambda: ctx.commands.remove([-1], Employed))]:
            try:
                call()
            except Exception as e:
                seen[name] = e
        seen["queued"] = len(ctx.commands)

    w = World()
    w.spawn(2)
    w.despawn([1])
    w.add_systems(bad)
    w.step()
    assert isinstance(seen["type"], ColumnTypeError) and "Wealth.value" in str(seen["type"])
    assert isinstance(seen["dead"], DeadEntityError) and "entity 99" in str(seen["dead"])
    assert isinstance(seen["dead_add"], DeadEntityError) and "entity 5" in str(seen["dead_add"])
    assert isinstance(seen["dead_remove"], DeadEntityError) and "entity -1" in str(seen["dead_remove"])
    assert seen["queued"] == 0 and w.next_id == 2 and len(w) == 1


def test_negative_spawn_count_and_zero_spawn():
    w = World()
    w.spawn(2)
    with pytest.raises(ValueError, match=">= 0"):
        w.commands.spawn(-3)
    assert w.commands.spawn(0).shape == (0,)
    w.commands.apply()
    assert len(w) == 2 and w.next_id == 2


def test_commands_queued_between_ticks_apply_at_the_first_sync_point(tmp_path):
    w = World()
    w.insert_resource(Log())
    w.add_systems(_observer("pre", "pre"), _observer("update", "update"))
    w.commands.spawn(2, {Wealth: {}})
    with pytest.raises(SnapshotError, match="pending commands"):
        w.save(tmp_path / "w.snap")
    assert not list(tmp_path.iterdir())
    w.step()
    seen = w.resource(Log).seen
    assert seen["pre"][0] == [] and seen["update"][0] == [0, 1]


def test_spawn_ids_are_deterministic_across_runs():
    def run():
        @system(writes=ALL, reads=ALL)
        def breed(ctx):
            v = ctx.query(Wealth)
            rich = v.ids[v[Wealth].value > 2]
            ctx.commands.spawn(rich.shape[0], {Wealth: {"value": ctx.rng("kid").integers(rich, 0, 5)}})
            ctx.commands.despawn(v.ids[v[Wealth].value == 0])

        w = World(seed=4)
        w.spawn(10, {Wealth: {"value": np.arange(10) % 5}})
        w.add_systems(breed)
        w.step(5)
        return w

    a, b = run(), run()
    assert a.entities.tolist() == b.entities.tolist() and a.state_hash() == b.state_hash()
    assert a.next_id > 10
