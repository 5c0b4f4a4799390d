"""Judges: the rule-judge contract, the LLM judge's parsing, fallback (no label) and replay, and the CLI."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.app.cli import main
from socius.correct import LabelError, LabelStore, load_replies
from socius.correct.judges import LLMJudge, RuleJudge, judge_policy, judgeable, matching
from socius.llm import LLM, MockEngine, ReplayEngine


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("judge") / "guess"
    assert main(["run", "guess", "--engine", "mock", "--agents", "16", "--rounds", "2", "--seed", "1",
                 "--out", str(out), "--quiet"]) == 0
    return out


def _ids(labels: pa.Table) -> list:
    return sorted(labels.column("label_id").to_pylist())


def test_matching_and_judgeable(run_dir):
    replies = load_replies(run_dir)
    assert matching(["speak00", "speak11", "poll_first"], ("speak*",)).tolist() == [True, True, False]
    rows = judgeable(replies)
    assert set(rows.column("kind").to_pylist()) == {"answer"}          # extraction calls are not judged
    assert 0 < rows.num_rows < replies.num_rows


def test_rule_judge_checks_its_output(run_dir):
    replies = load_replies(run_dir)
    short = RuleJudge("short", ("guess",), lambda r, w: (np.ones(2, np.int8), np.array(["x", "y"])))
    with pytest.raises(LabelError, match="short"):
        short.judge(replies)
    out_of_range = RuleJudge("six", ("guess",), lambda r, w: (np.full(r.num_rows, 6), np.full(r.num_rows, "x")))
    with pytest.raises(LabelError, match="1..5"):
        out_of_range.judge(replies)
    seen = []
    needs = RuleJudge("w", ("guess",), lambda r, w: (seen.append(w), (np.full(r.num_rows, 3), np.full(r.num_rows, "")))[1])
    assert needs.judge(replies, world="WORLD").labels.num_rows == judgeable(replies).num_rows
    assert seen == [None]                                                # world=False: not handed over
    assert RuleJudge("none", ("nothing",), needs.fn).judge(replies).labels.num_rows == 0


@settings(max_examples=20, deadline=None)
@given(st.permutations(list(range(12))), st.lists(st.integers(1, 5), min_size=12, max_size=12))
def test_rule_labels_do_not_depend_on_row_order(perm, scores):
    rows = pa.table({"run": ["r"] * 12, "tick": list(range(12)), "decision": ["d"] * 12, "kind": ["answer"] * 12,
                     "entity": list(range(12)), "prompt_hash": list(range(12)), "prompt": ["p"] * 12,
                     "completion": [f"c{s}" for s in scores], "model": [""] * 12, "adapter": [""] * 12,
                     "seed": [0] * 12, "completion_index": [0] * 12, "error": [""] * 12})
    fn = lambda r, w: (np.array([int(c[1]) for c in r.column("completion").to_pylist()]),  # noqa: E731
                       np.full(r.num_rows, "by text"))
    judge = RuleJudge("text", ("d",), fn)
    a, b = judge.judge(rows).labels, judge.judge(rows.take(pa.array(perm))).labels
    assert _ids(a) == _ids(b)
    assert sorted(a.column("score").to_pylist()) == sorted(scores)


def _judge(replies, tmp_path, policy, revise=False, seed=1):
    llm = LLM({"": MockEngine(policy, seed=seed)}, log_dir=tmp_path / "responses")
    try:
        return LLMJudge(revise=revise).judge(replies, llm, model="mock", seed=seed, round=0)
    finally:
        llm.close()


def test_llm_judge_parses_and_labels(run_dir, tmp_path):
    replies = load_replies(run_dir)
    res = _judge(replies, tmp_path, judge_policy(), revise=True)
    n = judgeable(replies).num_rows
    assert res.source == "judge:mock" and res.labels.num_rows == n and res.unlabelled == 0
    scores = np.array(res.labels.column("score").to_pylist())
    json_reply = np.array(["{" in c for c in res.labels.column("completion").to_pylist()])
    assert (scores[json_reply] == 5).all() and (scores[~json_reply] == 2).all()  # the mock judge's rule
    assert res.labels.column("revision").null_count == 0
    assert sorted(p.name for p in (tmp_path / "responses").iterdir()) == ["tick-00000000-judge:guess-answer.parquet"]


def test_llm_judge_garbage_gives_no_label_and_is_counted(run_dir, tmp_path):
    replies = load_replies(run_dir)
    res = _judge(replies, tmp_path, judge_policy(garbage=0.3, prose=0.3))
    c = res.counts["guess"]
    assert c["replies"] == judgeable(replies).num_rows
    assert c["fallback"] > 0 and c["extracted"] > 0                      # both paths ran
    assert c["labelled"] + c["fallback"] + c["failed"] == c["replies"]
    assert res.labels.num_rows == c["labelled"] and res.unlabelled == c["fallback"]
    assert set(res.labels.column("score").to_pylist()) <= {2, 5}         # never a made-up score
    # the rows that got no label are those whose judge reply was junk (judge world IDs are row positions)
    rows = judgeable(replies)
    keys = list(zip(rows.column("tick").to_pylist(), rows.column("entity").to_pylist()))
    got = set(zip(res.labels.column("tick").to_pylist(), res.labels.column("entity").to_pylist()))
    unlabelled = {i for i, k in enumerate(keys) if k not in got}
    log = load_replies(tmp_path)
    junk = log.filter(pa.compute.and_(pa.compute.equal(log.column("completion"), "I cannot judge this."),
                                      pa.compute.equal(log.column("kind"), "answer")))
    assert len(unlabelled) == c["fallback"] and set(junk.column("entity").to_pylist()) <= unlabelled


def test_llm_judge_engine_failure_gives_no_label(run_dir, tmp_path):
    replies = load_replies(run_dir)
    llm = LLM({"": MockEngine(judge_policy(), seed=1, fail_rate=0.5)}, log_dir=tmp_path / "r")
    res = LLMJudge().judge(replies, llm, model="mock", seed=1)
    llm.close()
    assert res.counts["guess"]["failed"] > 0
    assert res.labels.num_rows == res.counts["guess"]["labelled"] < judgeable(replies).num_rows


def test_llm_judge_replays_to_the_same_labels(run_dir, tmp_path):
    replies = load_replies(run_dir)
    first = _judge(replies, tmp_path, judge_policy(garbage=0.2, prose=0.2), revise=True, seed=7)
    again = LLMJudge(revise=True).judge(replies, LLM({}, replay=ReplayEngine(tmp_path / "responses")),
                                        model="mock", seed=7, round=0)
    assert _ids(again.labels) == _ids(first.labels) and again.counts == first.counts
    with pytest.raises(LookupError):  # another round asks other requests: not in the log
        LLMJudge(revise=True).judge(replies, LLM({}, replay=ReplayEngine(tmp_path / "responses")),
                                    model="mock", seed=7, round=1)


def test_cli_judge_end_to_end(run_dir, capsys):
    store = LabelStore(run_dir)
    before = store.read().num_rows
    assert main(["correct", "judge", str(run_dir), "--judge", "rule:all"]) == 0
    rule = store.read()
    assert rule.num_rows > before
    assert set(rule.column("source").to_pylist()) == {"rule:guess_number", "rule:guess_outcome"}
    assert main(["correct", "judge", str(run_dir), "--judge", "llm", "--engine", "mock", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "judge:mock" in out and "fell back" in out
    labels = store.read()
    llm_ids = _ids(labels.filter(pa.compute.equal(labels.column("source"), "judge:mock")))
    assert llm_ids and (run_dir / "judges" / "llm" / "judge.json").is_file()
    # replaying the round gives the same labels: nothing new is written
    assert main(["correct", "judge", str(run_dir), "--judge", "llm", "--replay"]) == 0
    assert _ids(store.read()) == _ids(labels)
    assert main(["correct", "judge", str(run_dir), "--judge", "rule:all"]) == 0   # idempotent too
    assert store.read().num_rows == labels.num_rows


@pytest.mark.parametrize("argv, message", [
    (["--judge", "rule:nope"], "no rule judge"),
    (["--judge", "bogus"], "expected rule:NAME"),
    (["--judge", "llm", "--replay", "5"], "no logged rounds"),
    (["--judge", "rule:all", "--revise"], "for the LLM judge"),
])
def test_cli_judge_usage_errors(tmp_path, run_dir, argv, message, capsys):
    import shutil
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("judges", "labels"))
    with pytest.raises(SystemExit) as e:
        main(["correct", "judge", str(copy), *argv])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_cli_judge_needs_a_run_directory(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["correct", "judge", str(tmp_path), "--judge", "rule:all"])
    assert e.value.code == 2 and "run.json" in capsys.readouterr().err


def test_one_grammar_for_every_judge_flag():
    """``select_judges``: what ``socius correct judge``, ``run --correct-every`` and the experiment accept."""
    from socius.app.registry import get_scenario
    from socius.correct.judges import select_judges
    from socius.errors import ConfigError
    rules = get_scenario("guess").judges

    def names(spec):
        kind, _, chosen = select_judges(spec, rules, "--judge", "guess")
        assert kind == "rule"
        return [j.name for j in chosen]
    every = [j.name for j in rules]
    assert names("rule") == names("rule:") == names("rule:all") == every
    assert names("rule:guess_outcome, guess_number") == ["guess_outcome", "guess_number"]
    assert select_judges("llm", rules, "--judge") == ("llm", "llm", ())
    assert select_judges("llm:strict", rules, "--judge") == ("llm", "strict", ())
    assert select_judges("rule:anything", None, "--judge")[0] == "rule"       # grammar only
    for spec, message in (("human", "--x: expected rule:NAME"), ("rule:nope", "--x: scenario guess has no rule judge "
                                                                 "'nope'"), ("llm:../up", "bad LLM judge name"),
                          ("rule:guess_number,all", "no rule judge 'all'")):
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            select_judges(spec, rules, "--x", "guess")
    with pytest.raises(ConfigError, match="declares no rule judges"):
        select_judges("rule:all", (), "--x", "empty")
