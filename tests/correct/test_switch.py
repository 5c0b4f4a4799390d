"""The adapter switch: a cohort moves to a LoRA adapter mid-run; replay, resume and 2 ranks agree.

A small LLM scenario (defined here) asks every agent for a number through the mock engine, whose
policy answers agents on adapter ``kind`` in [50, 60] and the rest in [0, 10], so a switch really
changes replies. The runner installs the switch after the build (``install_switch``).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field

import numpy as np
import pytest

from socius.app import run as runner
from socius.app.engines import EngineChoice
from socius.app.registry import Scenario
from socius.components import ModelChoice
from socius.correct.switch import (SWITCH_LOG, AdapterSchedule, SwitchLog, install_switch, parse_switches,
                                   read_switches, schedule_switch, schedule_switches)
from socius.ecs import STR, Component, Scalar, String, World, system
from socius.errors import ConfigError, EngineSetupError
from socius.llm import LLM, Decision, JsonReply, MockEngine, Number, Sampling, Template, decide, number_policy
from socius.llm.engines.mock import adapter_policy
from socius.mpi import owned_block, run_ranks
from socius.systems import find_agents


class Person(Component):
    job = String()
    answer = Scalar(np.float64)


ASK = Decision("pick", Template("You are a {job} (agent {who}). Pick a number: "), JsonReply(number=Number(0, 100)),
               fallback={"number": np.nan}, sampling=Sampling(temperature=0.0, max_tokens=8))
JOBS = np.array(["nurse", "baker", "teacher"], dtype=STR)


@dataclass
class PickConfig:
    agents: int = 30
    switches: list = field(default_factory=list)


@system(phase="update", reads=(ModelChoice,), writes=(Person,), resources=(LLM,))
def pick(ctx):
    v = ctx.query(Person, ModelChoice)
    a = v[ModelChoice].adapter
    res = decide(ctx, ASK, v.ids, {"job": v[Person].job, "who": v.ids % 7},
                 adapters=a if (a != "").any() else None)
    v.set(Person, answer=res.values["number"])


def build(world: World, cfg: PickConfig) -> None:
    ids = owned_block(world, cfg.agents)
    world.spawn(len(ids), {Person: {"job": JOBS[ids % 3], "answer": np.nan}, ModelChoice: {}}, ids=ids)
    world.add_systems(pick)
    schedule_switches(world, cfg.switches)


def policy(cfg):
    return adapter_policy({"kind": number_policy(50, 60)}, number_policy(0, 10))


SCENARIO = Scenario("pick", "agents pick numbers", PickConfig, build, mock_policy=policy)


@pytest.fixture
def adapter(tmp_path):
    path = tmp_path / "adapters" / "kind-v1"
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    return str(path)


def _run(out=None, ticks=5, switch_at=None, path="", resume=None, replay=None, ranks=None, cfg=None,
         snapshot_every=0):
    """Run the scenario; ``switch_at``: schedule the nurses' switch while running (as the online loop
    would, between ticks ``switch_at - 1`` and ``switch_at``)."""
    def progress(world, total):
        if switch_at is not None and world.tick == switch_at - 1:
            schedule_switch(world, switch_at, "kind", path, where="Person.job == 'nurse'")
    return runner.run_scenario(SCENARIO, cfg or PickConfig(), seed=3, ticks=ticks, out=out, resume=resume,
                               engine=EngineChoice("mock", replay=replay), progress=progress, ranks=ranks,
                               snapshot_every=snapshot_every)


def _answers(world):
    v = world.query(Person, ModelChoice)
    return v[Person].job, v[ModelChoice].adapter, v[Person].answer


def test_a_switch_moves_the_cohort_and_changes_the_run(tmp_path, adapter):
    plain = _run(tmp_path / "plain")
    switched = _run(tmp_path / "switched", switch_at=2, path=adapter)
    assert plain.state_hash != switched.state_hash
    job, ad, answer = _answers(switched.world)
    assert (ad[job == "nurse"] == "kind").all() and (ad[job != "nurse"] == "").all()
    assert (answer[job == "nurse"] >= 50).all() and (answer[job != "nurse"] <= 10).all()
    rows = json.loads((tmp_path / "switched" / SWITCH_LOG).read_text())
    assert [(r["tick"], r["adapter"], r["status"]) for r in rows] == [(2, "kind", "applied")]
    assert switched.world.resource(AdapterSchedule).items == rows


def test_replay_reaches_the_same_hash_with_no_engine_load(tmp_path, adapter):
    first = _run(tmp_path / "a", switch_at=2, path=adapter)
    shutil.rmtree(adapter)  # a replay never reads the adapter
    again = _run(tmp_path / "b", replay=tmp_path / "a")
    assert again.state_hash == first.state_hash


@pytest.mark.parametrize("snap_tick", [1, 3])
def test_resume_before_and_after_the_switch(tmp_path, adapter, snap_tick):
    whole = _run(tmp_path / "whole", switch_at=2, path=adapter)
    part = tmp_path / "part"
    _run(part, ticks=snap_tick, switch_at=2, path=adapter)
    later = tmp_path / "later"
    later.mkdir()
    shutil.copy2(part / "snapshot.socius", later / "snapshot.socius")
    if (part / SWITCH_LOG).exists():
        shutil.copy2(part / SWITCH_LOG, later / SWITCH_LOG)
    # a fresh engine: after the switch it must load the adapter again before tick 3 asks it
    res = _run(later, switch_at=2, path=adapter, resume=later / "snapshot.socius")
    assert res.state_hash == whole.state_hash
    assert res.world.resource(LLM).adapters() == {"": {"kind": adapter}}


def test_a_failed_load_keeps_the_adapters_and_the_run_goes_on(tmp_path):
    with pytest.warns(UserWarning, match="no such folder"):
        res = _run(tmp_path / "bad", switch_at=2, path=str(tmp_path / "missing"))
    assert res.ticks == 5
    _, ad, _ = _answers(res.world)
    assert (ad == "").all()
    (row,) = res.world.resource(AdapterSchedule).items
    assert row["status"].startswith("failed:") and "missing" in row["status"]
    assert res.state_hash == _run(tmp_path / "replay", replay=tmp_path / "bad").state_hash


def test_two_ranks_switch_at_the_same_tick(tmp_path, adapter):
    cfg = PickConfig(agents=31, switches=[{"tick": 2, "adapter": "kind", "path": adapter,
                                           "where": "Person.job == 'nurse'"},
                                          {"tick": 4, "adapter": "", "ids": [0, 3, 30]}])
    one = _run(tmp_path / "one", cfg=cfg)
    hashes = run_ranks(2, lambda ctx: _run(tmp_path / "two", cfg=cfg, ranks=ctx).state_hash)
    assert hashes == [one.state_hash, one.state_hash]
    job, ad, _ = _answers(one.world)
    ids = one.world.query(Person).ids
    back = np.isin(ids, [0, 3, 30])
    assert (ad[(job == "nurse") & ~back] == "kind").all() and (ad[back] == "").all()


def test_llm_load_is_all_or_nothing(tmp_path, adapter):
    class Refuses(MockEngine):
        def load_adapter(self, name, path):
            raise EngineSetupError(f"refused {name}")

    a, b = MockEngine(number_policy(0, 1)), Refuses(number_policy(0, 1))
    a.load_adapter("kind", adapter)
    llm = LLM({"": a, "b": b})
    other = tmp_path / "kind-v2"
    shutil.copytree(adapter, other)
    with pytest.raises(EngineSetupError, match="refused kind"):
        llm.load_adapter("kind", other)
    assert a.adapters() == {"kind": adapter}          # put back as it was
    assert llm.load_adapter("kind", adapter, model="") == []   # idempotent: already there
    assert llm.load_adapter("kind", other, model="") == [""]
    assert a.adapters() == {"kind": str(other)}
    with pytest.raises(EngineSetupError, match="no engine for model 'x'"):
        llm.load_adapter("kind", other, model="x")


@pytest.mark.parametrize("bad,where", [
    ({"tick": -1, "adapter": "a", "path": "p"}, "[0].tick"),
    ({"tick": 1, "adapter": "a"}, "[0].path"),
    ({"tick": 1, "adapter": "", "path": "p"}, "[0].path"),
    ({"tick": 1, "adapter": "a", "path": "p", "where": "nonsense"}, "[0].where"),
    ({"tick": 1, "adapter": "a", "path": "p", "ids": [1.5]}, "[0].ids"),
    ({"tick": 1, "adapter": "a", "path": "p", "colour": 1}, "[0].colour"),
])
def test_bad_switches_name_the_field(bad, where):
    with pytest.raises(ConfigError, match=f"adapter_switches{where.replace('[', '.').replace(']', '.')}"):
        parse_switches([bad])


def test_schedule_refuses_a_past_tick_and_a_damaged_log(tmp_path):
    w = World(seed=1)
    w.step(3)
    with pytest.raises(ConfigError, match="tick 2 has already run"):
        schedule_switch(w, 2, "kind", "p")
    (tmp_path / SWITCH_LOG).write_text("{not json")
    with pytest.raises(ConfigError, match=SWITCH_LOG):
        read_switches(tmp_path)
    assert read_switches(tmp_path / "nowhere") == []


def test_installing_inserts_no_saved_state():
    w = World(seed=1)
    before = w.state_hash()
    install_switch(w)
    install_switch(w)  # once
    assert w.state_hash() == before and isinstance(w.resource(SwitchLog), SwitchLog)
    assert sum(s.name == "apply_adapter_switches" for s in w.schedule.systems()) == 1


# --- every LLM scenario: a switched cohort, and only it, answers through the adapter --------------------

def _scenario_case(name):
    """``(scenario, config, switch tick, cohort selector)``: small worlds; the discussion switches at
    tick 0, so its first poll (tick 0 only) must already see the new ``ModelChoice`` rows."""
    if name == "social":
        from socius.scenarios.social.config import SocialConfig
        from socius.scenarios.social.scenario import SCENARIO as scn
        return scn, SocialConfig(agents=300, share=1.0, seeds=20), 1, {"ids": list(range(0, 300, 2))}
    if name == "jobs":
        from socius.scenarios.jobs.config import JobsConfig
        from socius.scenarios.jobs.scenario import SCENARIO as scn
        return scn, JobsConfig(agents=120, employers=20), 1, {"where": "Seeker.field == 'sales'"}
    if name == "recommender":
        from socius.scenarios.recommender.config import RecommenderConfig
        from socius.scenarios.recommender.scenario import SCENARIO as scn
        return scn, RecommenderConfig(agents=100, recommender="popularity"), 1, {"where": "Profile.age < 40"}
    from socius.scenarios.discussion.config import DiscussionConfig
    from socius.scenarios.discussion.scenario import SCENARIO as scn
    return scn, DiscussionConfig(agents=30, mode="agent", turns=3), 0, {"where": "Persona.age >= 40"}


def _switched(scn, tick, path, cohort):
    """``scn`` whose mock answers adapter ``kind`` with its own policy at another seed, and (with
    ``path``) whose build schedules the cohort's switch to ``kind`` at ``tick``."""
    from dataclasses import replace

    def policy(cfg):
        base = scn.mock_policy(cfg)
        return adapter_policy({"kind": lambda batch, seed: base(batch, seed + 1)}, base)

    def build(world, cfg):
        scn.build(world, cfg)
        if path is not None:
            schedule_switch(world, tick, "kind", path, **cohort)

    return replace(scn, mock_policy=policy, build=build)


def _replies(run_dir):
    from socius.correct.responses import load_replies
    t = load_replies(run_dir).to_pydict()
    keys = zip(t["tick"], t["decision"], t["kind"], t["prompt_hash"], t["entity"], t["completion_index"])
    return {k: (c, a) for k, c, a in zip(keys, t["completion"], t["adapter"])}


@pytest.mark.parametrize("name", ["social", "jobs", "recommender", "discussion"])
def test_every_llm_scenario_switches_its_cohort(tmp_path, adapter, name):
    scn, cfg, at, cohort = _scenario_case(name)
    ticks = 3

    def run(out, path=None, replay=None):
        s = _switched(scn, at, path, cohort) if replay is None else scn  # a replay needs no policy, no build hook
        return runner.run_scenario(s, cfg, seed=5, ticks=ticks, out=tmp_path / out,
                                   engine=EngineChoice("mock", replay=replay))

    plain, switched = run("plain"), run("switched", path=adapter)
    assert switched.state_hash != plain.state_hash
    w = switched.world
    (row,) = w.resource(AdapterSchedule).items
    assert row["status"] == "applied"
    members = w.ids_of(ModelChoice)              # the scenario gives nobody a ModelChoice: the switch did
    assert (w.get(ModelChoice, "adapter", members) == "kind").all()
    expected = (np.intersect1d(np.asarray(cohort["ids"]), w.entities) if "ids" in cohort
                else find_agents(w, cohort["where"]))
    assert members.size and np.array_equal(members, expected)
    base, now = _replies(tmp_path / "plain"), _replies(tmp_path / "switched")
    assert {a for _, a in base.values()} == {""}
    in_cohort = {int(i) for i in members}
    kinds = {k for k, (_, a) in now.items() if a == "kind"}
    assert kinds and all(k[4] in in_cohort and k[0] >= at for k in kinds)          # only the cohort, from then on
    assert all(k in kinds for k in now if k[4] in in_cohort and k[0] >= at)       # and all of its calls
    same_prompt = [k for k in now if k in base]
    kept = [now[k][0] == base[k][0] for k in same_prompt if k not in kinds]
    changed = [now[k][0] != base[k][0] for k in same_prompt if k in kinds]
    assert kept and all(kept)                    # same prompt, not switched: the same reply
    assert any(changed)                          # switched: the adapter's own replies (the seed moved)
    again = run("replay", replay=tmp_path / "switched")
    assert again.state_hash == switched.state_hash


def test_a_switch_back_queues_nothing_and_a_later_switch_wins(tmp_path, adapter):
    """Agents without a ModelChoice: two switches at one tick — the last one selecting an agent wins, and a
    switch to the base model gives nobody a ModelChoice."""
    w = World(seed=1)
    ids = w.spawn(6, {Person: {"job": JOBS[np.arange(6) % 3]}})
    install_switch(w)
    w.insert_resource(LLM({"": MockEngine(number_policy(0, 1))}))
    schedule_switches(w, [{"tick": 0, "adapter": "kind", "path": adapter, "ids": [int(i) for i in ids[:4]]},
                          {"tick": 0, "adapter": "", "ids": [int(ids[0])]},
                          {"tick": 0, "adapter": "kind", "path": adapter, "where": "Person.job == 'teacher'"}])
    w.step(1)
    held = w.ids_of(ModelChoice)
    assert held.tolist() == [int(i) for i in ids[1:4]] + [int(ids[5])]
    assert (w.get(ModelChoice, "adapter", held) == "kind").all()
