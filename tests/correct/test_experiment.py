"""The correction experiment end to end on the mock at a tiny size, and its pure parts."""
from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from socius.app.experiment import run_experiment
from socius.correct.experiment import MOCK_NOTE, held_out_split, result_rows, score_agents, summarise


@given(st.lists(st.integers(0, 10_000), min_size=2, max_size=200, unique=True), st.integers(0, 2**31))
@settings(max_examples=50, deadline=None)
def test_split_is_a_partition_free_of_order(ids, seed):
    a, b = held_out_split(np.array(ids), seed)
    assert len(a) and len(b) and not set(a) & set(b) and set(a) | set(b) == set(ids)
    a2, b2 = held_out_split(np.array(ids[::-1]), seed)
    assert a.tolist() == a2.tolist() and b.tolist() == b2.tolist()


def test_summary_spreads_over_seeds():
    rows = [dict(part="single", method="kto", labels=8, round=0, arm="on", seed=s, score=v, n=10)
            for s, v in enumerate([3.0, 4.0, 5.0])]
    s = summarise(result_rows(rows)).to_pylist()[0]
    assert s["score_mean"] == 4.0 and math.isclose(s["score_std"], np.std([3, 4, 5])) and s["seeds"] == 3


def test_experiment_on_the_mock(tmp_path):
    out = tmp_path / "exp"
    results, summary = run_experiment(out, agents=12, labels=(0, 4, 8), methods=("sft", "kto"), rounds=2,
                                      every=1, seeds=(0, 1), say=lambda *a: None)
    assert (out / "results.parquet").is_file() and (out / "correction.png").stat().st_size > 1000
    assert pq.read_table(out / "summary.parquet").num_rows == summary.num_rows
    single = [r for r in results.to_pylist() if r["part"] == "single"]
    assert len(single) == 2 * 2 * 3
    assert all(r["n"] > 0 and 1 <= r["score"] <= 5 for r in single if r["method"] == "sft" or r["labels"] == 0)
    # kto needs labels on both sides of its band; the mock judge scores most replies 5, so a point
    # without them is skipped (NaN, n = 0), never silently filled in
    assert all((r["n"] > 0) != math.isnan(r["score"]) for r in single)
    rounds = [r for r in results.to_pylist() if r["part"] == "rounds"]
    assert sorted({(r["round"], r["arm"]) for r in rounds}) == [(1, "off"), (1, "on"), (2, "off"), (2, "on")]
    # the mock's adapters learn nothing: every arm scores exactly as the uncorrected one (machinery only)
    by = {(r["seed"], r["round"], r["arm"]): r["score"] for r in rounds}
    assert all(by[(s, k, "on")] == by[(s, k, "off")] for s, k, _ in by)
    assert (out / "note.md").read_text().strip() == MOCK_NOTE
    # the switches really happened in the treated arms, on every agent
    import json
    sw = json.loads((out / "seed-0" / "on-1" / "switches.json").read_text())
    assert sw[-1]["status"] == "applied" and sw[-1]["adapter"] == "fix"


def test_score_agents_filters_agents_and_ticks():
    import pyarrow as pa
    labels = pa.table({"entity": [1, 2, 3], "tick": [0, 1, 2], "score": pa.array([1, 5, 3], pa.int8())})
    assert score_agents(labels, [2, 3]) == (4.0, 2)
    assert score_agents(labels, [2, 3], (2, 3)) == (3.0, 1)
    assert math.isnan(score_agents(labels, [9])[0])


def test_the_command(tmp_path, capsys):
    from socius.app.cli import _run_command, make_parser
    from socius.app.loop import COMMANDS
    from rich.console import Console
    parser = make_parser([(c, None) for c in COMMANDS])
    args = parser.parse_args(["experiment", "correction", "--agents", "8", "--labels", "0,4", "--methods", "sft",
                              "--rounds", "1", "--every", "1", "--seeds", "1", "--train-judge", "rule",
                              "--out", str(tmp_path / "e")])
    assert _run_command(args.scenario_command, args, Console()) == 0
    text = capsys.readouterr().out
    assert "held-out agents" in text and "machinery" in text and (tmp_path / "e" / "summary.parquet").is_file()
    bad = parser.parse_args(["experiment", "correction", "--methods", "ppo", "--out", str(tmp_path / "f")])
    with pytest.raises(SystemExit) as e:
        _run_command(bad.scenario_command, bad, Console())
    assert e.value.code == 2


def test_the_judges_must_differ(tmp_path):
    from socius.errors import ConfigError
    for train, score in (("rule:guess_number", "rule"), ("llm", "llm"), ("rule", "rule:guess_outcome")):
        with pytest.raises(ConfigError, match="circular"):
            run_experiment(tmp_path / "x", agents=8, train_judge=train, score_judge=score, say=lambda *a: None)
    with pytest.raises(ConfigError, match="no rule judge 'nope'"):
        run_experiment(tmp_path / "x", agents=8, train_judge="rule:nope", say=lambda *a: None)


def test_rule_labels_scored_by_another_rule(tmp_path):
    out = tmp_path / "exp"
    results, _ = run_experiment(out, agents=10, labels=(0, 6), methods=("sft", "dpo"), rounds=2, every=1, seeds=(3,),
                                train_judge="rule:guess_number", score_judge="rule:guess_outcome", say=lambda *a: None)
    rows = results.to_pylist()
    assert all(r["n"] > 0 and 1 <= r["score"] <= 5 for r in rows)    # DPO has targets: the rule rewrites
    from socius.correct import LabelStore
    sources = set(LabelStore(out / "seed-3" / "base").read().column("source").to_pylist())
    assert sources == {"rule:guess_number"}                          # the scoring judge made no training label
    import json
    meta = json.loads((out / "experiment.json").read_text())
    assert meta["score_judge"] == "rule:guess_outcome" and meta["wall_s"] > 0
    # round 1 is the single round's 0-label point and its largest point of the first method: not run twice
    assert not (out / "seed-3" / "off-0").exists() and not (out / "seed-3" / "on-0").exists()
    one = {(r["part"], r["round"], r["labels"], r["arm"]): (r["score"], r["n"]) for r in rows if r["method"] == "sft"}
    first = [v for k, v in one.items() if k[:2] == ("rounds", 1)]
    assert sorted(first) == sorted([one[("single", 0, 0, "off")], one[("single", 0, 6, "on")]])


def test_a_lent_engine_outlives_its_runs(tmp_path, monkeypatch):
    import types
    from socius.app.engines import EngineChoice, llm_resource
    from socius.llm.engines.lent import LentEngine
    from socius.llm import MockEngine, number_policy
    from socius.llm.engines import factory
    monkeypatch.setenv("SOCIUS_CACHE", str(tmp_path / "cache"))
    engine = MockEngine(number_policy(0, 10))
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    engine.load_adapter("kept", folder)
    make = factory.make_engine
    choice = EngineChoice(kind="local", config={"enable_lora": True}, instance=engine)
    shim = types.SimpleNamespace(name="judge", mock_policy=lambda cfg: number_policy(0, 1))
    run_llm, judge_llm = (llm_resource(shim, None, 0, choice, None) for _ in range(2))   # a run and its judge
    lent = run_llm.engine("")
    assert isinstance(lent, LentEngine) and lent._engine is engine and judge_llm.engine("")._engine is engine
    lent.load_adapter("fix", folder)
    lent.progress = "set"                                          # attributes reach the engine
    assert engine.progress == "set" and set(engine.adapters()) == {"kept", "fix"}
    run_llm.close()
    assert factory.make_engine is make                             # nothing was patched
    assert set(engine.adapters()) == {"kept"}                      # what the run loaded is gone, not the rest
    made = llm_resource(shim, None, 0, EngineChoice(kind="mock"), None).engine("")
    assert not isinstance(made, LentEngine) and made is not engine                 # no loan: an engine is made


def test_rounds_are_one_point_whatever_the_labels_per_seed():
    rows = [dict(part="rounds", method="sft", labels=lab, round=2, arm="on", seed=s, score=v, n=40)
            for s, (lab, v) in enumerate([(102, 4.0), (104, 5.0), (102, 4.5)])]
    rows += [dict(part="single", method="sft", labels=lab, round=0, arm="on", seed=0, score=3.0, n=40) for lab in (32, 64)]
    s = summarise(result_rows(rows)).to_pylist()
    rounds = [r for r in s if r["part"] == "rounds"]
    assert len(rounds) == 1 and rounds[0]["seeds"] == 3 and rounds[0]["labels"] == 103 and rounds[0]["replies"] == 120
    assert sorted(r["labels"] for r in s if r["part"] == "single") == [32, 64]
