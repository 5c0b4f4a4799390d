"""The registry: built-ins, installed scenarios (entry points), and the sub-commands a scenario adds."""
import importlib.metadata
import sys
import textwrap

import pytest

from socius.app.cli import main
from socius.app.registry import BUILTIN, ENTRY_POINTS, ScenarioNotFound, get_scenario, scenario_names

PLUGIN = textwrap.dedent('''
    from dataclasses import dataclass
    import numpy as np
    from socius.ecs import Component, Scalar
    from socius.errors import ConfigError, EngineSetupError
    from socius.app.registry import Command, Scenario

    class Mood(Component, name="plugin_scenario.Mood"):
        value = Scalar(np.float64)

    @dataclass
    class Config:
        agents: int = 5

    def build(world, cfg):
        world.spawn(cfg.agents, {Mood: {}})

    def add_arguments(p):
        p.add_argument("--name", required=True)
        p.add_argument("--fail", choices=("config", "engine"))

    def run(args):
        if args.fail == "config":
            raise ConfigError("argument --fail: asked to")
        if args.fail == "engine":
            raise EngineSetupError("no engine today")
        print(f"hello {args.name}")
        return 0

    SCENARIO = Scenario(name="plugged", summary="an installed scenario", config=Config, build=build,
                        commands=(Command(("greet", "hello"), "say hello", add_arguments, run),))
''')


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed package registering the scenario ``plugged`` (and a broken one) in the entry-point group."""
    (tmp_path / "plugin_scenario.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "plugin_scenario", raising=False)
    eps = [importlib.metadata.EntryPoint("plugged", "plugin_scenario:SCENARIO", ENTRY_POINTS),
           importlib.metadata.EntryPoint("broken", "plugin_missing_module:SCENARIO", ENTRY_POINTS),
           importlib.metadata.EntryPoint("boltzmann", "plugin_scenario:SCENARIO", ENTRY_POINTS)]
    real = importlib.metadata.entry_points

    def entry_points(**kw):
        return [ep for ep in eps if ep.group == kw.get("group")] if "group" in kw else real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    yield


def test_builtins_resolve_by_name_without_entry_points():
    assert get_scenario("boltzmann").name == "boltzmann"
    assert set(BUILTIN) <= set(scenario_names())


def test_an_installed_scenario_is_found_by_name_and_a_builtin_name_wins(plugin, capsys):
    assert "plugged" in scenario_names() and "broken" in scenario_names()
    assert get_scenario("plugged").summary == "an installed scenario"
    assert get_scenario("boltzmann").name == "boltzmann"
    with pytest.raises(ScenarioNotFound, match="installed: broken, plugged"):
        get_scenario("nope")
    assert main(["run", "plugged", "--agents", "7", "--steps", "2", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("state_hash: ")


def test_list_shows_installed_scenarios_their_commands_and_leaves_a_broken_one_out(plugin, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "plugged" in out and "greet hello" in out and "boltzmann" in out
    assert "broken" in out and "left out" in out


def test_a_scenario_command_is_dispatched(plugin, capsys):
    assert main(["greet", "hello", "--name", "you"]) == 0
    assert "hello you" in capsys.readouterr().out


def test_a_scenario_command_fails_with_exit_2(plugin, capsys):
    with pytest.raises(SystemExit) as e:
        main(["greet", "hello", "--name", "x", "--fail", "config"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "argument --fail: asked to" in err and "socius greet hello" in err and "Traceback" not in err
    assert main(["greet", "hello", "--name", "x", "--fail", "engine"]) == 2
    assert "error: no engine today" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["greet", "hello"])
    assert e.value.code == 2 and "--name" in capsys.readouterr().err


def test_own_commands_import_no_registered_scenario(plugin, capsys):
    assert main(["run", "boltzmann", "--agents", "10", "--steps", "1", "--quiet"]) == 0
    assert "plugin_scenario" not in sys.modules
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == 2 and "plugin_scenario" in sys.modules  # an unknown word: look at every scenario
