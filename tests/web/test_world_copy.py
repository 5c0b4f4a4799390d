"""The live dashboard's world copy: the same state as the world (same hash, columns, inbox, saved
resources), and independent of it (the run goes on, the copy stays as it was)."""
from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings, strategies as st

from socius.ecs import Component, Message, Ragged, RaggedArray, Resource, Scalar, String, Vector, World, system
from socius.web.world_copy import copy_world


class Body(Component):
    __component_name__ = "copytest.Body"
    wealth = Scalar(np.int64)
    mood = Scalar(np.float32)


class Mind(Component):
    __component_name__ = "copytest.Mind"
    name = String()
    emb = Vector(np.float16, 3)


class Links(Component):
    __component_name__ = "copytest.Links"
    follows = Ragged(np.int64)


class Note(Message):
    __component_name__ = "copytest.Note"
    text = String()


class Ledger(Resource):
    __resource_name__ = "copytest.Ledger"
    history: list = dataclasses.field(default_factory=list)
    bins: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3, np.int64))


@system(reads=(Body, Mind), writes=(Body, Mind), sends=(Note,), resources=(Ledger,))
def live_a_tick(ctx):
    v = ctx.query(Body)
    v.set(Body, wealth=v[Body].wealth + ctx.rng("w").integers(v.ids, -1, 2))
    m = ctx.query(Mind)
    m.set(Mind, name=np.strings.add(m[Mind].name, "!"))
    ctx.send(Note, v.ids, v.ids[::-1], text=[f"hi {i}" for i in v.ids.tolist()])
    led = ctx.resource(Ledger)
    led.history.append(int(v[Body].wealth.sum()))
    led.bins = led.bins + 1


def make(n: int, seed: int, ticks: int, despawn: int) -> World:
    w = World(seed=seed)
    g = np.random.default_rng(seed)
    ids = w.spawn(n, {Body: {"wealth": g.integers(0, 9, n), "mood": g.random(n).astype(np.float32)}})
    w.add_component(ids[::2], Mind, name=[f"a{i}" for i in ids[::2]], emb=g.random((len(ids[::2]), 3)))
    w.add_component(ids, Links, follows=[g.choice(ids, size=g.integers(0, min(3, n) + 1), replace=False).tolist()
                                         for _ in ids])
    w.despawn(ids[:despawn])
    w.insert_resource(Ledger())
    w.add_systems(live_a_tick)
    w.step(ticks)
    return w


def columns(w: World) -> dict:
    out = {}
    for c in (Body, Mind, Links):
        out[c.__name__] = w.ids_of(c).tolist()
        for col in c.columns():
            v = w.get(c, col)
            out[f"{c.__name__}.{col}"] = v.to_lists() if isinstance(v, RaggedArray) else v.tolist()
    return out


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 2**16), ticks=st.integers(0, 3), despawn=st.integers(0, 5))
def test_a_copy_holds_the_worlds_state_and_stays_put_while_the_world_runs_on(n, seed, ticks, despawn):
    w = make(n, seed, ticks, min(despawn, n - 1))
    c = copy_world(w)
    assert c.state_hash() == w.state_hash() and c.tick == w.tick and c.next_id == w.next_id
    assert columns(c) == columns(w)
    assert np.array_equal(c.messages.read(Note).text, w.messages.read(Note).text)
    frozen_hash, frozen = c.state_hash(), columns(c)
    w.step(1)
    w.set(Body, w.ids_of(Body)[:1], wealth=10**6)
    w.resource(Ledger).bins[0] = 99
    assert c.state_hash() == frozen_hash and columns(c) == frozen
    assert c.resource(Ledger).bins[0] != 99 and c.get_resource(Ledger) is not w.get_resource(Ledger)


def test_a_copy_leaves_plain_resources_behind():
    class Engine:  # a plain resource (an engine, a log): not state
        pass
    w = make(5, 1, 1, 0)
    w.insert_resource(Engine())
    c = copy_world(w)
    assert c.get_resource(Engine) is None and c.get_resource(Ledger) is not None
    assert c.state_hash() == w.state_hash()
