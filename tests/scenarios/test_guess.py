"""The guess-p-of-the-average scenario with the mock engine: rules, runs, replay, resume, configs, prompts."""
import string

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.ecs import STR, World
from socius.app.cli import main
from socius.scenarios.guess import SCENARIO, GuessConfig, GuessGame, Guess, game, prompts
from socius.app.engines import EngineChoice
from socius.app.run import build_world
from socius.llm import Template


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=200), st.randoms())
def test_exact_mean_is_order_independent(values, rnd):
    a = np.array(values)
    b = a.copy()
    rnd.shuffle(b)
    assert game.exact_mean(a) == game.exact_mean(b)
    assert game.exact_mean(a) == pytest.approx(a.mean(), abs=1e-6)


def test_target_and_equilibria():
    assert game.target_of(30.0, 2 / 3, 0.0) == pytest.approx(20.0)
    for p in (1 / 3, 1 / 2, 2 / 3):  # the nash10 target maps 10 onto itself
        assert game.target_of(10.0, p, 10.0) == pytest.approx(10.0)
    cfg = GuessConfig(game="nash10", p=0.5)
    assert cfg.offset_value == pytest.approx(5.0) and cfg.nash == pytest.approx(10.0)
    w = game.winners(np.array([1.0, 5.0, 9.0, 5.0]), 5.2)
    assert w.tolist() == [False, True, False, True]
    assert game.winners(np.array([1.0, 5.0, 9.0]), 5.0, tolerance=4.0).tolist() == [True, True, True]


def run_world(cfg: GuessConfig, rounds: int, seed: int = 1) -> World:
    w = build_world(SCENARIO, cfg, seed, EngineChoice("mock"))
    w.step(rounds)
    return w


def test_rounds_converge_and_counts_add_up():
    w = run_world(GuessConfig(agents=800), 5)
    h = w.resource(GuessGame).history
    assert [r["round"] for r in h] == [1, 2, 3, 4, 5]
    means = [r["mean"] for r in h]
    assert means[-1] < means[0] / 2  # agents move towards the equilibrium 0
    for r in h:
        assert r["ok"] + r["extracted"] + r["fallback"] + r["failed"] == 800
        assert r["min"] <= r["median"] <= r["max"] and r["winners"] >= 1
        assert r["target"] == pytest.approx(2 / 3 * r["mean"])
    assert sum(r["extracted"] for r in h) > 0  # the mock's prose replies went through extraction
    values = w.get(Guess, "value")
    assert ((values >= 0) & (values <= 100)).all()


def test_same_seed_same_hash_and_order_of_agents_irrelevant():
    a = run_world(GuessConfig(agents=300), 3, seed=5)
    b = run_world(GuessConfig(agents=300), 3, seed=5)
    c = run_world(GuessConfig(agents=300), 3, seed=6)
    assert a.state_hash() == b.state_hash() != c.state_hash()


def test_group_game_with_a_mixture_of_models():
    cfg = GuessConfig(agents=300, game="group", models=["a", "b", "c"], prompt="cot")
    w = build_world(SCENARIO, cfg, 2, EngineChoice("mock", {"models": {m: {"kind": "mock"} for m in "abc"}}))
    w.step(3)
    g = w.resource(GuessGame)
    assert g.groups == 3 and len(g.group_numbers) == 3 and all(len(x) == 3 for x in g.group_numbers)
    rows = g.winners_by
    assert {r["round"] for r in rows} == {1, 2, 3}
    assert all(r["model"] in "abc" and r["group"] == "abc".index(r["model"]) for r in rows)


def test_backgrounds_are_written_by_the_llm():
    from socius.scenarios.guess import Profile
    cfg = GuessConfig(agents=50, profile="background", backgrounds=True)
    w = build_world(SCENARIO, cfg, 3, EngineChoice("mock"))
    bg = w.get(Profile, "background")
    assert (np.strings.find(bg, "enjoys puzzles") >= 0).all()


def test_cli_run_replay_and_resume_give_the_same_hash(tmp_path, capsys):
    base = ["run", "guess", "--agents", "400", "--seed", "3", "--engine", "mock", "--quiet"]
    assert main(base + ["--rounds", "4", "--out", str(tmp_path / "full")]) == 0
    full = capsys.readouterr().out.strip().splitlines()[-1]
    assert full.startswith("state_hash: ")
    metrics = pq.read_table(tmp_path / "full" / "metrics.parquet")
    assert metrics.column("round").to_pylist() == [1, 2, 3, 4]
    assert (tmp_path / "full" / "winners.parquet").is_file()
    assert (tmp_path / "full" / "decisions.parquet").is_file()
    assert len(list((tmp_path / "full" / "responses").glob("*.parquet"))) >= 4
    # replay: no engine at all, same final state
    assert main(["run", "guess", "--agents", "400", "--seed", "3", "--rounds", "4", "--quiet",
                 "--replay", str(tmp_path / "full")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == full
    # resume from a snapshot after round 2
    assert main(base + ["--rounds", "2", "--out", str(tmp_path / "part")]) == 0
    capsys.readouterr()
    assert main(base + ["--rounds", "4", "--resume", str(tmp_path / "part")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == full


@pytest.mark.parametrize("toml, field", [
    ('game = "poker"', "game"),
    ('prompt = "shout"', "prompt"),
    ("p = 1.5", "p"),
    ('profile = "pet"', "profile"),
    ("temperature = -1", "temperature"),
    ('game = "group"\ngroups = 1', "groups"),
    ("[population.age]\ndist = \"normal\"\nmean = 40\nstd = -3", "population.age.std"),
    ("[population.name]\ndist = \"dice\"", "population.name.dist"),
    ("agentz = 4", "agentz"),
])
def test_bad_configs_exit_2_naming_the_field(tmp_path, capsys, toml, field):
    f = tmp_path / "c.toml"
    f.write_text(toml + "\n")
    with pytest.raises(SystemExit) as e:
        main(["run", "guess", "--engine", "mock", "--config", str(f)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err


def test_engine_flags_are_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "guess", "--engine", "gpt-9"])
    assert e.value.code == 2 and "--engine" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["run", "boltzmann", "--engine", "mock"])
    assert e.value.code == 2 and "no LLM calls" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["run", "guess", "--replay", str(tmp_path / "nothing")])
    assert e.value.code == 2 and "--replay" in capsys.readouterr().err


@pytest.mark.parametrize("game_kind", ["classic", "nash10", "group"])
@pytest.mark.parametrize("variant", list(prompts.VARIANTS))
@pytest.mark.parametrize("first", [True, False])
def test_prompt_templates_render_like_str_format(game_kind, variant, first):
    text = prompts.decision_template(game_kind, variant, profile="background", first_round=first)
    fields = [f for _, f, _, _ in string.Formatter().parse(text) if f]
    values = {f: f"<{f}>" for f in fields}
    ours = Template(text).render({f: np.array([values[f]] * 2, dtype=STR) for f in fields}, 2)
    assert ours[0] == ours[1] == text.format(**values)
