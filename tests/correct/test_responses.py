"""The log's ``entities`` column and ``load_replies``: greedy and sampled requests, ranks, old logs, bad files."""
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from socius.app.cli import main
from socius.correct import LabelError, load_replies, response_files
from socius.ecs import STR, World
from socius.llm import LLM, Decision, JsonReply, MockEngine, Number, Sampling, Template, decide

TEMPLATE = Template("You are in group {group}. Say a number:")
SCHEMA = JsonReply(number=Number(0, 100))


def entity_policy(batch, seed):
    """Each completion names the agent it is for: the log can be checked against what the agent got."""
    return np.strings.add(np.strings.add('{"number": ', (batch.entities % 100).astype(STR)), "}").astype(STR)


def decide_run(tmp_path, temperature: float, n=60, groups=7):
    run = tmp_path / f"run-{temperature}"
    w = World(seed=3)
    w.insert_resource(LLM({"": MockEngine(entity_policy, seed=3)}, log_dir=run / "responses"))
    ids = w.spawn(n)
    res = decide(w, Decision("g", TEMPLATE, SCHEMA, {"number": 0.0}, sampling=Sampling(temperature=temperature)),
                 ids, {"group": ids % groups})
    w.flush()
    return run, ids, res


def test_sampled_requests_log_each_agents_completion(tmp_path):
    run, ids, res = decide_run(tmp_path, temperature=1.0)
    raw = pq.read_table(response_files(run)[0])
    assert raw.schema.field("entities").type == pa.large_list(pa.int64())
    assert raw.num_rows == 7  # seven distinct prompts, one request each with n completions
    t = load_replies(run)
    assert t.num_rows == ids.shape[0]
    ent = t.column("entity").to_numpy()
    assert sorted(ent) == sorted(ids)  # every agent exactly once
    # completion j of a request went to entities[j]: the reply the agent got names it
    got = dict(zip(res.ids.tolist(), res.values["number"].tolist()))
    comp = [int(c.split(": ")[1].rstrip("}")) for c in t.column("completion").to_pylist()]
    assert comp == [got[e] for e in ent]
    assert comp == [e % 100 for e in ent]
    # completion_index counts within the request; entities ascend inside one
    idx = t.column("completion_index").to_numpy()
    assert (idx[idx > 0] == idx[np.flatnonzero(idx > 0) - 1] + 1).all()
    assert (np.diff(ent)[idx[1:] > 0] > 0).all()


def test_greedy_requests_log_the_first_agent(tmp_path):
    run, ids, res = decide_run(tmp_path, temperature=0.0)
    raw = pq.read_table(response_files(run)[0])
    assert raw.column("n").to_pylist() == [1] * 7
    assert [e[0] for e in raw.column("entities").to_pylist()] == raw.column("first_entity").to_pylist()
    t = load_replies(run)
    assert t.num_rows == 7
    assert t.column("entity").to_pylist() == raw.column("first_entity").to_pylist()
    assert sorted(t.column("entity").to_pylist()) == list(range(7))  # group g's first agent is g
    assert (t.column("completion_index").to_numpy() == 0).all()


@pytest.fixture(scope="module")
def guess_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("guess") / "run"
    assert main(["run", "guess", "--agents", "200", "--rounds", "2", "--engine", "mock", "--seed", "1",
                 "--out", str(out), "--quiet"]) == 0
    return out


def test_guess_run_has_one_answer_per_agent_per_round(guess_run):
    t = load_replies(guess_run)
    ans = t.filter(pa.compute.equal(t.column("kind"), "answer"))
    for tick in (0, 1):
        ent = ans.filter(pa.compute.equal(ans.column("tick"), tick)).column("entity").to_numpy()
        assert np.array_equal(np.sort(ent), np.arange(200))
    assert set(t.column("kind").to_pylist()) == {"answer", "extract"}
    assert t.column("run").unique().to_pylist() == ["run"]
    again = load_replies(guess_run)
    assert again.equals(t)  # the same table however often it is read
    assert load_replies(guess_run, decisions=("guess",)).num_rows == t.num_rows
    with pytest.raises(LabelError, match="no logged replies"):
        load_replies(guess_run, decisions=("nope",))


def test_replay_and_load_replies_work_with_logs_without_entities(guess_run, tmp_path, capsys):
    """A log written before ``entities`` existed: replay reaches the same hash, load_replies uses first_entity."""
    old = tmp_path / "old"
    shutil.copytree(guess_run, old)
    for f in response_files(old):
        t = pq.read_table(f)
        pq.write_table(t.drop_columns(["entities"]), f)
    t = load_replies(old)
    new = load_replies(guess_run)
    assert t.num_rows == new.num_rows
    assert t.column("completion").equals(new.column("completion"))
    first = pa.compute.equal(new.column("completion_index"), 0)
    assert t.filter(first).column("entity").equals(new.filter(first).column("entity"))
    capsys.readouterr()
    want = (guess_run / "run.json").read_text().split('"state_hash": "')[1].split('"')[0]
    for log in (guess_run, old):
        assert main(["run", "guess", "--agents", "200", "--rounds", "2", "--seed", "1", "--quiet",
                     "--replay", str(log)]) == 0
        assert capsys.readouterr().out.strip().splitlines()[-1] == f"state_hash: {want}"


def test_rank_folders_are_read_rank_by_rank(guess_run, tmp_path):
    multi = tmp_path / "multi"
    (multi / "responses").mkdir(parents=True)
    files = response_files(guess_run)
    for r, f in enumerate(files):  # spread the files over two rank folders
        dest = multi / "responses" / f"rank-{r % 2:05d}"
        dest.mkdir(exist_ok=True)
        shutil.copy(f, dest / f.name)
    t = load_replies(multi)
    assert t.num_rows == load_replies(guess_run).num_rows
    assert t.column("run").unique().to_pylist() == ["multi"]
    assert [p.parent.name for p in response_files(multi)] == ["rank-00000"] * 2 + ["rank-00001"] * 2


def test_corrupt_and_missing_logs_are_named(guess_run, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(guess_run / "responses", bad / "responses")
    victim = response_files(bad)[1]
    victim.write_bytes(b"not parquet at all")
    with pytest.raises(LabelError, match=victim.name):
        load_replies(bad)
    with pytest.raises(LabelError, match="no response log"):
        load_replies(tmp_path / "nowhere")
    (tmp_path / "empty" / "responses").mkdir(parents=True)
    with pytest.raises(LabelError, match="empty"):
        load_replies(tmp_path / "empty")
    wrong = tmp_path / "wrong" / "responses"
    wrong.mkdir(parents=True)
    pq.write_table(pa.table({"tick": [0]}), wrong / "tick-00000000-g-answer.parquet")
    with pytest.raises(LabelError, match="missing"):
        load_replies(wrong.parent)


@pytest.fixture(scope="module")
def five_ticks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ticks") / "guess"
    assert main(["run", "guess", "--engine", "mock", "--agents", "9", "--rounds", "5", "--seed", "2",
                 "--out", str(out), "--quiet"]) == 0
    return out


@settings(max_examples=25, deadline=None)
@given(st.one_of(st.none(), st.integers(-2, 7)), st.one_of(st.none(), st.integers(-2, 7)))
def test_a_tick_range_is_the_filter_of_the_whole_log(five_ticks, lo, hi):
    whole = load_replies(five_ticks)
    t = whole.column("tick").to_numpy()
    keep = (t >= (lo if lo is not None else -1)) & (t < (hi if hi is not None else 1 << 40))
    part = load_replies(five_ticks, since_tick=lo, before_tick=hi)
    assert part.to_pylist() == whole.filter(pa.array(keep)).to_pylist()    # the same rows, in log order
    assert part.schema.equals(whole.schema)                                 # an empty range too


def test_a_tick_range_skips_files_before_reading(five_ticks, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(five_ticks, run)
    (run / "responses" / "tick-00000001-guess-answer.parquet").write_bytes(b"not parquet")
    with pytest.raises(LabelError, match="tick-00000001"):
        load_replies(run)
    later = load_replies(run, since_tick=2)            # the broken file of tick 1 is never opened
    assert sorted(set(later.column("tick").to_pylist())) == [2, 3, 4]
    assert [f.name[:13] for f in response_files(run, 3, 4)] == ["tick-00000003"]
