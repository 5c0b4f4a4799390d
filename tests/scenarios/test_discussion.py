"""Group discussion with the mock engine: measures, both modes on one population, mentions, runs, ranks."""
import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.ecs import World
from socius.mpi import attach_ranks, run_ranks
from socius.app.cli import main
from socius.scenarios.discussion import (SCENARIO, DiscussionConfig, DiscussionRuntime, DiscussionState, Inbox,
                                         Persona, Room, Seat, Stance, Talk, build, measures)
from socius.scenarios.discussion.mock import discussion_policy
from socius.app.engines import EngineChoice
from socius.app.run import build_world
from socius.llm import LLM
from socius.ecs import STR
from socius.llm import MockEngine


# ------------------------------------------------------------------ measures
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=60))
def test_gini_from_counts_matches_the_pairwise_definition(values):
    v = np.array(values, dtype=np.int64)
    expect = 0.0 if v.sum() == 0 else np.abs(v[:, None] - v[None, :]).sum() / (2 * v.shape[0] ** 2 * v.mean())
    assert measures.gini(v) == pytest.approx(expect, abs=1e-12)
    assert 0.0 <= measures.gini(v) < 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=5, max_size=5))
def test_moments_from_a_histogram_match_numpy(counts):
    hist = np.array(counts)
    values = np.repeat(np.arange(1, 6), hist)
    m = measures.moments_from_levels(hist, np.arange(1, 6))
    if values.shape[0] == 0:
        assert np.isnan(m["mean"])
        return
    assert m["mean"] == pytest.approx(values.mean())
    assert m["var"] == pytest.approx(values.var(), abs=1e-9)


def test_bimodality_separates_polarised_from_consensual():
    levels = np.arange(1, 6)
    polarised = measures.bimodality(np.array([50, 0, 0, 0, 50]), levels)
    consensual = measures.bimodality(np.array([5, 20, 50, 20, 5]), levels)
    assert polarised > measures.BIMODAL_THRESHOLD > consensual
    assert np.isnan(measures.bimodality(np.array([0, 0, 9, 0, 0]), levels))


# ------------------------------------------------------------------ runs
def run(mode: str, rounds: int = 3, agents: int = 48, seed: int = 1, **kw) -> World:
    w = build_world(SCENARIO, DiscussionConfig(agents=agents, mode=mode, **kw), seed, EngineChoice("mock"))
    w.step(rounds)
    return w


def test_rooms_are_groups_with_unique_names_and_the_remainder_in_the_last_room():
    w = run("agent", rounds=0, agents=23, room_size=4)
    room = w.get(Seat, "index")
    sizes = np.bincount(room)
    assert sizes.tolist() == [4, 4, 4, 4, 7] and w.count(Room) == 5
    names = w.get(Persona, "name")
    for r in range(5):  # a handful of rooms, checking the invariant
        assert np.unique(names[room == r]).shape[0] == sizes[r]
    assert (w.get(Room, "size") == sizes).all()


@pytest.mark.parametrize("mode", ["agent", "script"])
def test_counts_add_up(mode):
    cfg_turns = 6
    w = run(mode, rounds=3, turns=cfg_turns)
    h = w.resource(DiscussionState).history
    rooms = w.count(Room)
    assert [r["round"] for r in h] == [1, 2, 3]
    for r in h:
        assert sum(r[f"stance_{k}"] for k in range(1, 6)) == r["agents"] == 48
        assert 0 < r["utterances"] <= rooms * cfg_turns
        assert 0.0 <= r["talk_gini"] < 1 and 0.0 <= r["extreme_share"] <= 1
    talk_total = int(w.get(Talk, "utterances").sum())
    assert talk_total == sum(r["utterances"] for r in h)
    if mode == "agent":  # every turn, exactly one speaker in every room
        assert all(r["utterances"] == rooms * cfg_turns for r in h)
    lines = w.get(Room, "lines")
    assert (np.strings.count(w.get(Room, "transcript"), "\n") + (lines > 0) == lines).all()
    s = w.get(Stance, "value")
    assert ((s >= 1) & (s <= 5)).all()


def test_both_modes_on_one_population_cost_side_by_side():
    turns, rounds = 6, 2
    a, s = run("agent", rounds, turns=turns), run("script", rounds, turns=turns)
    # same seed, same population, same first poll
    assert (a.get(Persona, "name") == s.get(Persona, "name")).all()
    assert (a.get(Stance, "initial") == s.get(Stance, "initial")).all()
    rooms = a.count(Room)
    ca, cs = a.resource(DiscussionRuntime).cost, s.resource(DiscussionRuntime).cost
    for x, y in zip(ca, cs):
        assert x["talk_calls"] == turns and y["talk_calls"] == 1          # one batched call per turn vs per round
        assert x["talk_requests"] >= rooms * turns and y["talk_requests"] == rooms
        assert y["talk_prompt_tokens"] * 3 < x["talk_prompt_tokens"]       # each turn re-reads the history
        assert x["requests"] - x["talk_requests"] == y["requests"] - y["talk_requests"]  # polls cost the same
    cols = SCENARIO.metrics(a)
    assert {"talk_calls", "talk_requests", "talk_prompt_tokens", "talk_output_tokens", "wall_s"} <= set(cols)


def test_mentions_notify_the_addressed_agents_next_tick():
    w = build_world(SCENARIO, DiscussionConfig(agents=40, mode="agent"), 4, EngineChoice("mock"))
    w.step(1)
    made = int(w.get(Talk, "mentions_made").sum())
    assert made > 0 and w.get(Talk, "mentions_received").sum() == 0   # sent in tick 0, read in tick 1
    w.step(1)
    received_after_first = int(w.get(Talk, "mentions_received").sum())
    # the tick-0 mentions are all in the inboxes now (plus nothing else yet)
    assert received_after_first == made
    inbox = w.get(Inbox, "count")
    assert inbox.sum() == made and ((inbox > 0) == (w.get(Inbox, "who") != "")).all()


def test_same_seed_same_hash():
    assert run("agent", 2, seed=5).state_hash() == run("agent", 2, seed=5).state_hash() \
        != run("agent", 2, seed=6).state_hash()
    assert run("script", 2, seed=5).state_hash() == run("script", 2, seed=5).state_hash()


def test_script_lines_by_strangers_or_beyond_the_turns_are_dropped():
    mock = discussion_policy()

    def noisy(batch, seed):
        out = mock(batch, seed)
        script = np.strings.startswith(np.repeat(batch.prompts, batch.n), "# Group discussion script")
        junk = "\nNobody: hello @Maria\nnot a line at all\n"
        return np.where(script, np.strings.add(np.strings.add(out, junk), out), out).astype(STR)

    w = World(seed=2)
    w.insert_resource(LLM({"": MockEngine(noisy, seed=2)}))
    build(w, DiscussionConfig(agents=24, mode="script", turns=5))
    w.step(2)
    assert (w.get(Room, "lines") == 5).all()   # the doubled script is cut at `turns` lines per room
    assert w.get(Talk, "round_utterances").sum() == 5 * w.count(Room)
    t = w.get(Room, "transcript")
    assert not ((np.strings.find(t, "\nNobody:") >= 0) | np.strings.startswith(t, "Nobody:")).any()
    assert not (np.strings.find(t, "not a line") >= 0).any()


@pytest.mark.parametrize("mode", ["agent", "script"])
def test_two_ranks_give_the_one_rank_history(mode):
    cfg = DiscussionConfig(agents=30, mode=mode, turns=4)

    def on_rank(ctx):
        w = World(seed=9)
        attach_ranks(w, ctx)
        w.insert_resource(LLM({"": MockEngine(discussion_policy(), seed=9)}))
        build(w, cfg)
        rooms_here = set(w.ids_of(Room).tolist())
        assert set(w.get(Seat, "room").tolist()) <= rooms_here  # every member sits with its room
        w.step(2)
        return w.resource(DiscussionState).history, w.ids_of(Persona)

    (one, ids1), = run_ranks(1, on_rank)
    two = run_ranks(2, on_rank)
    assert two[0][0] == two[1][0] == one
    assert sorted(np.r_[two[0][1], two[1][1]].tolist()) == ids1.tolist()


def test_cli_run_replay_and_resume_give_the_same_hash(tmp_path, capsys):
    base = ["run", "discussion", "--agents", "32", "--seed", "3", "--engine", "mock", "--quiet"]
    assert main(base + ["--rounds", "3", "--out", str(tmp_path / "full")]) == 0
    full = capsys.readouterr().out.strip().splitlines()[-1]
    assert full.startswith("state_hash: ")
    m = pq.read_table(tmp_path / "full" / "metrics.parquet")
    assert m.column("round").to_pylist() == [1, 2, 3]
    for f in ("utterances.parquet", "stances.parquet", "discussion_rounds.png", "decisions.parquet"):
        assert (tmp_path / "full" / f).is_file()
    u = pq.read_table(tmp_path / "full" / "utterances.parquet")
    assert u.num_rows == sum(m.column("utterances").to_pylist())
    assert main(["run", "discussion", "--agents", "32", "--seed", "3", "--rounds", "3", "--quiet",
                 "--replay", str(tmp_path / "full")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == full
    assert main(base + ["--rounds", "1", "--out", str(tmp_path / "part")]) == 0
    capsys.readouterr()
    assert main(base + ["--rounds", "3", "--resume", str(tmp_path / "part")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == full


def test_scheduled_interventions_reach_that_ticks_prompts():
    seen = []
    mock = discussion_policy()

    def spy(batch, seed):
        seen.append((batch.tick, np.repeat(batch.prompts, batch.n)))
        return mock(batch, seed)

    w = World(seed=6)
    w.insert_resource(LLM({"": MockEngine(spy, seed=6)}))
    build(w, DiscussionConfig(agents=16, turns=2, interventions=[
        {"tick": 1, "set": "Room.statement", "value": "Pineapple belongs on pizza.", "where": "Room.index == 0"},
        {"tick": 1, "set": "Stance.value", "value": 5, "where": "Group.group == 1"}]))
    w.step(2)
    statements = w.get(Room, "statement")
    assert statements[0] == "Pineapple belongs on pizza." and (statements[1:] != statements[0]).all()
    at = {t: np.concatenate([p for tt, p in seen if tt == t]) for t in (0, 1)}
    assert not (np.strings.find(at[0], "Pineapple") >= 0).any()
    speak1 = at[1][np.strings.startswith(at[1], "# Group discussion\n")]
    pine = np.strings.find(speak1, "Pineapple") >= 0
    assert pine.sum() == 2                                   # room 0's two turns
    room1 = np.strings.find(speak1, "Participants: " + w.get(Room, "members")[1]) >= 0
    assert room1.sum() == 2 and (np.strings.find(speak1[room1], "view on the statement: 5 of 5") >= 0).all()


@pytest.mark.parametrize("toml, field", [
    ("[[interventions]]\ntick = 1\nset = \"Room\"\nvalue = 1", "interventions[0].set"),
    ('mode = "chat"', "mode"),
    ("room_size = 1", "room_size"),
    ("turns = 0", "turns"),
    ("topics = []", "topics"),
    ("agents = 3", "agents"),
    ("[population.leaning]\ndist = \"dice\"", "population.leaning.dist"),
    ("roomz = 4", "roomz"),
])
def test_bad_configs_exit_2_naming_the_field(tmp_path, capsys, toml, field):
    f = tmp_path / "c.toml"
    f.write_text(toml + "\n")
    with pytest.raises(SystemExit) as e:
        main(["run", "discussion", "--engine", "mock", "--config", str(f)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err
