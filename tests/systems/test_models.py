"""model_choice: the ModelChoice columns of any subset of agents, "" without one, None when all are ""."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.components import ModelChoice
from socius.ecs import STR, AccessError, Component, Scalar, World, system
from socius.llm import LLM, Decision, JsonReply, MockEngine, Number, Template, decide, number_policy
from socius.llm.engines.mock import adapter_policy
from socius.systems import model_choice


class Mark(Component):
    value = Scalar(np.int64)


def _world(models, adapters, holders):
    """10 agents; ``holders`` of them get ``ModelChoice`` with the given values."""
    w = World(seed=1)
    w.spawn(10, {Mark: {}})
    if len(holders):
        w.commands.add(np.asarray(holders), ModelChoice, model=np.asarray(models, dtype=STR),
                       adapter=np.asarray(adapters, dtype=STR))
        w.commands.apply()
    return w


def test_no_model_choice_is_none_and_registers_nothing_that_counts():
    w = _world([], [], [])
    before = w.state_hash()
    assert model_choice(w, w.entities) == (None, None)
    assert model_choice(w, np.zeros(0, np.int64)) == (None, None)
    assert w.state_hash() == before


def test_columns_of_the_subset_in_its_order_with_gaps():
    w = _world(["a", "", "b"], ["kind", "", ""], [2, 5, 7])
    models, adapters = model_choice(w, np.array([7, 1, 2, 2, 5]))
    assert models.dtype == STR and models.tolist() == ["b", "", "a", "a", ""]
    assert adapters.tolist() == ["", "", "kind", "kind", ""]
    assert model_choice(w, np.array([1, 5, 9])) == (None, None)    # holders and not, all ""
    models, adapters = model_choice(w, np.array([5, 7]))
    assert adapters is None and models.tolist() == ["", "b"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "m1", "m2"]), st.sampled_from(["", "kind", "calm"])),
                min_size=10, max_size=10),
       st.lists(st.booleans(), min_size=10, max_size=10),
       st.lists(st.integers(0, 9), max_size=25))
def test_matches_a_lookup_per_agent(values, held, ask):
    holders = [i for i in range(10) if held[i]]
    w = _world([values[i][0] for i in holders], [values[i][1] for i in holders], holders)
    got = model_choice(w, np.asarray(ask, dtype=np.int64))
    for k, col in enumerate(got):
        want = [values[i][k] if held[i] else "" for i in ask]
        if not any(want):
            assert col is None
        else:
            assert col.shape == (len(ask),) and col.tolist() == want


def test_a_system_declares_it_and_decide_routes_by_it(tmp_path):
    w = _world(["", ""], ["kind", ""], [1, 4])
    (tmp_path / "adapter_config.json").write_text("{}")
    eng = MockEngine(adapter_policy({"kind": number_policy(7, 7, key="n")}, number_policy(1, 1, key="n")))
    eng.load_adapter("kind", tmp_path)
    w.insert_resource(LLM({"": eng}))
    ask = Decision("say", Template("agent {who}: "), JsonReply(n=Number(0, 9)), fallback={"n": 0})
    seen = {}

    @system(reads=(Mark, ModelChoice), resources=(LLM,))
    def asks(ctx):
        v = ctx.query(Mark)
        models, adapters = model_choice(ctx, v.ids)
        seen["adapters"] = adapters
        seen["res"] = decide(ctx, ask, v.ids, {"who": v.ids}, models=models, adapters=adapters)

    @system(reads=(Mark,))
    def undeclared(ctx):
        model_choice(ctx, ctx.query(Mark).ids)

    w.add_systems(asks)
    w.step(1)
    assert seen["adapters"].tolist() == ["", "kind"] + [""] * 8
    assert seen["res"].values["n"].tolist() == [1, 7] + [1] * 8   # agent 1 asked through its adapter
    w2 = World(seed=1)
    w2.spawn(3, {Mark: {}})
    w2.add_systems(undeclared)
    with pytest.raises(AccessError, match="ModelChoice"):
        w2.step(1)
