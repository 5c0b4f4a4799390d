"""Fuzzed input: bad configs, flags, engine configs, interventions, scenario files, response logs and
snapshots always end in a clear error (naming the field or file) and exit code 2 — never a traceback,
never a half-written run directory.

Every input goes through ``socius.app.cli.main`` in this process; an exception escaping it fails the
test (that is the traceback a user would see). Inputs tried per run: the ``max_examples`` below plus
the parametrised cases (320 in the default run; raise them for a longer campaign).
"""
from __future__ import annotations

import io
import json
import shutil
import string
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from socius.app.cli import main

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
GUESS = ["run", "guess", "--agents", "20", "--rounds", "1", "--engine", "mock", "--quiet"]
CONFIGURED = ["run", "guess", "--rounds", "1", "--engine", "mock", "--quiet"]  # agents from the config


def invoke(argv: list[str]) -> tuple[int, str]:
    """``socius <argv>`` in this process: (exit code, stdout + stderr)."""
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return rc, out.getvalue()


def assert_usage_error(argv: list[str], names: list[str], out_dir: Path | None = None) -> str:
    rc, text = invoke(argv)
    assert rc == 2, f"exit {rc} for {argv}:\n{text[-2000:]}"
    assert "Traceback" not in text, text
    assert any(n in text for n in names), f"none of {names} named in:\n{text[-1500:]}"
    if out_dir is not None:
        assert not out_dir.exists(), f"a failed run left {sorted(p.name for p in out_dir.iterdir())} in {out_dir}"
    return text


def _fresh(tmp: Path, stem: str) -> Path:
    k = sum(1 for _ in tmp.glob(f"{stem}*"))
    return tmp / f"{stem}{k}"


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12), st.lists(st.integers(), max_size=3),
                    st.dictionaries(st.text(string.ascii_lowercase, max_size=5), st.integers(), max_size=2))
_FIELDS = ["agents", "game", "p", "max_value", "groups", "prompt", "reply_style", "famous_note", "profile",
           "few_shot", "extract", "temperature", "max_tokens", "models", "population"]
_GOOD = {"agents": st.integers(1, 50), "game": st.sampled_from(["classic", "nash10"]), "p": st.floats(0.1, 0.9),
         "temperature": st.floats(0.0, 1.5)}


def _bad_config():
    """(table, the field that is bad): one bad field among good ones."""
    unknown = st.text(string.ascii_lowercase + "_", min_size=1, max_size=10).filter(lambda k: k not in _FIELDS)
    wrong = st.tuples(st.sampled_from(["agents", "max_value"]),
                      st.one_of(st.text(max_size=5), st.integers(max_value=0), st.lists(st.integers(), max_size=2),
                                st.floats(allow_nan=False).filter(lambda x: x != int(x) if abs(x) < 1e15 else True)))
    wrong_str = st.tuples(st.sampled_from(["game", "prompt", "profile", "extract"]),
                          st.text(string.ascii_letters, max_size=8).filter(
                              lambda s: s not in ("classic", "nash10", "group", "basic", "cot", "rational", "strategic",
                                                  "anonymous", "name", "education", "occupation", "background",
                                                  "fallback", "never")))
    bad = st.one_of(st.tuples(unknown, _VALUES), wrong, wrong_str)
    good = st.fixed_dictionaries({}, optional=_GOOD)
    return st.tuples(good, bad).map(lambda gb: ({**gb[0], gb[1][0]: gb[1][1]}, gb[1][0]))


@settings(FUZZ, max_examples=60)
@given(_bad_config(), st.sampled_from(["toml", "json"]))
def test_bad_config_fields_are_named(tmp_path, case, fmt):
    table, bad = case
    path = _fresh(tmp_path, "cfg").with_suffix("." + fmt)
    if fmt == "json":
        path.write_text(json.dumps(table))
    else:
        path.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in table.items() if v is not None))
        try:
            assume(bad in tomllib_load(path))
        except ValueError:
            assume(False)
    out = _fresh(tmp_path, "run")
    assert_usage_error(CONFIGURED + ["--config", path, "--out", out], [bad, path.name], out)


def _toml(v) -> str:
    """A TOML value for the JSON-like ``v`` (inline tables for dicts)."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return json.dumps(v)


def tomllib_load(path: Path) -> dict:
    import tomllib
    return tomllib.loads(path.read_text())


@settings(FUZZ, max_examples=40)
@given(st.binary(max_size=80) | st.text(max_size=80), st.sampled_from([".toml", ".json", ".yaml", ""]))
def test_config_files_that_do_not_parse_name_the_file(tmp_path, blob, suffix):
    path = _fresh(tmp_path, "blob").with_suffix(suffix) if suffix else _fresh(tmp_path, "blob")
    path.write_bytes(blob if isinstance(blob, bytes) else blob.encode("utf-8", "surrogatepass"))
    out = _fresh(tmp_path, "run")
    rc, text = invoke(GUESS + ["--config", path, "--out", out])
    assert "Traceback" not in text
    assert rc in (0, 2), text
    if rc == 2:
        assert path.name in text or "config" in text, text
        assert not out.exists()


_FLAG_VALUES = st.sampled_from(["-1", "0", "1", "x", "1e3", "", " ", "nan", "2.5", "99999999999999999999", "-0",
                                "--", "None", "/nonexistent/dir", "🙂"])


@settings(FUZZ, max_examples=60)
@given(st.sampled_from(["--agents", "--steps", "--rounds", "--seed", "--snapshot-every", "--engine", "--resume",
                        "--replay", "--engine-config", "--config", "--bogus"]), _FLAG_VALUES,
       st.sampled_from(["guess", "boltzmann", "social"]))
def test_bad_flags_are_named(tmp_path, flag, value, scenario):
    if flag in ("--agents", "--steps", "--rounds", "--snapshot-every") and value in ("1", "0", "-0"):
        value = "x" if flag == "--snapshot-every" or value == "1" else value
        assume(not (flag in ("--steps", "--rounds", "--snapshot-every") and value in ("0", "-0")))
    if flag == "--seed":
        assume(value not in ("1", "0", "-0", "-1", "99999999999999999999"))
    out = _fresh(tmp_path, "run")
    argv = ["run", scenario, "--agents", "10", "--steps", "1", "--engine", "mock", "--out", out, "--quiet",
            flag, value]
    if scenario == "boltzmann":
        argv.remove("--engine"), argv.remove("mock")
    names = [flag, "--steps/--rounds", "unrecognized arguments", "--engine", value.strip() or flag]
    if flag == "--agents" and value == "0":
        names.append("--agents")
    assert_usage_error(argv, names, out)


_ENGINE_TABLES = st.one_of(
    st.dictionaries(st.sampled_from(["per_request_s", "per_output_token_s", "fail_rate"]),
                    st.one_of(st.text(max_size=4), st.lists(st.integers(), max_size=2), st.none(),
                              st.floats(max_value=-1e-9)),
                    min_size=1),
    st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=8).filter(
        lambda k: k not in ("per_request_s", "per_output_token_s", "fail_rate", "models", "faults")), _VALUES,
        min_size=1),
    st.fixed_dictionaries({"models": st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2),
                                               st.just({"m": {"kind": "nope"}}),
                                               st.just({"m": {"per_request_s": "slow"}}))}))


@settings(FUZZ, max_examples=50)
@given(_ENGINE_TABLES)
def test_bad_engine_configs_are_named(tmp_path, table):
    path = _fresh(tmp_path, "engine").with_suffix(".json")
    path.write_text(json.dumps(table))
    out = _fresh(tmp_path, "run")
    names = [*table, *(table.get("models") if isinstance(table.get("models"), dict) else {}), "models", "engine"]
    if isinstance(table.get("models"), dict):
        names += ["nope", "per_request_s"]
    assert_usage_error(GUESS + ["--engine-config", path, "--out", out], names, out)


_CONDITIONS = st.one_of(
    st.text(max_size=30),
    st.builds(lambda c, col, op, lit: f"{c}.{col} {op} {lit}",
              st.sampled_from(["Seeker", "Nope", "seeker", "Seeker.x", ""]),
              st.sampled_from(["field", "expected", "nope", "", "field.x"]),
              st.sampled_from(["==", "!=", ">=", "<", "~", "=", "in", ""]),
              st.sampled_from(["'sales'", "30", "x", "'", "[1, 2]", "", "1e999", "None"])))
_TARGETS = st.one_of(st.text(max_size=20), st.sampled_from(
    ["Seeker.expected", "Seeker.nope", "Nope.expected", "state.", "state", ".x", "Seeker", "Seeker.expected.x",
     "resource.Nope.x", "JobsStats.nope"]))


@settings(FUZZ, max_examples=25)
@given(st.fixed_dictionaries({"tick": st.one_of(st.integers(-2, 1), st.text(max_size=2), st.booleans()),
                              "set": _TARGETS, "value": _VALUES},
                             optional={"where": _CONDITIONS | st.lists(_CONDITIONS, max_size=2),
                                       "ids": st.one_of(st.lists(st.integers(-5, 5), max_size=3), st.text(max_size=3)),
                                       "when": st.integers()}))
def test_bad_interventions_are_named(tmp_path, item):
    path = _fresh(tmp_path, "jobs").with_suffix(".json")
    path.write_text(json.dumps({"agents": 30, "employers": 4, "interventions": [item]}))
    out = _fresh(tmp_path, "run")
    rc, text = invoke(["run", "jobs", "--config", path, "--steps", "2", "--engine", "mock", "--out", out, "--quiet"])
    assert "Traceback" not in text, text
    assert rc in (0, 2), f"exit {rc}:\n{text[-2000:]}"
    if rc == 2:
        assert "interventions[0]" in text or "intervention" in text.lower(), text[-1500:]
        assert not out.exists() or any(out.glob("snapshot*")), "a failed run left a half-written directory"


@settings(FUZZ, max_examples=25)
@given(st.sampled_from(["", "import nothing_here_at_all\n", "raise RuntimeError('boom')\n", "SCENARIO = 3\n",
                        "x = (\n", "def f(:\n", "from socius import Scenario\nSCENARIO = Scenario\n"
                        ]) | st.text(max_size=40))
def test_bad_scenario_files_are_named(tmp_path, source):
    path = _fresh(tmp_path, "scenario").with_suffix(".py")
    path.write_text(source)
    out = _fresh(tmp_path, "run")
    assert_usage_error(["run", path, "--steps", "1", "--engine", "mock", "--out", out, "--quiet"], [path.name], out)


@pytest.fixture(scope="module")
def guess_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("guess") / "run"
    rc, text = invoke(GUESS[:-1] + ["--rounds", "2", "--snapshot-every", "1", "--out", out, "--quiet"])
    assert rc == 0, text
    return out


def _damage(path: Path, how: str, where: float) -> None:
    data = path.read_bytes()
    k = int(where * len(data))
    if how == "truncate":
        path.write_bytes(data[:k])
    elif how == "flip":
        path.write_bytes(data[:k] + bytes([data[k] ^ 0xFF]) + data[k + 1:])
    else:
        path.write_bytes(b"")


@settings(FUZZ, max_examples=30)
@given(st.sampled_from(["truncate", "flip", "empty"]), st.floats(0.0, 0.999), st.integers(0, 10))
def test_corrupt_response_logs_are_named(tmp_path, guess_run, how, where, pick):
    src = _fresh(tmp_path, "src")
    shutil.copytree(guess_run, src)
    logs = sorted((src / "responses").glob("*.parquet"))
    victim = logs[pick % len(logs)]
    _damage(victim, how, where)
    out = _fresh(tmp_path, "run")
    rc, text = invoke(GUESS[:-3] + ["--rounds", "2", "--replay", src, "--out", out, "--quiet"])
    assert "Traceback" not in text, text
    if rc == 0:  # a flipped byte parquet does not see (no page checksums) must at least give the same hash
        assert json.loads((out / "run.json").read_text())["state_hash"] == json.loads(
            (guess_run / "run.json").read_text())["state_hash"]
        return
    assert rc == 2, text
    assert victim.name in text or "responses" in text, text[-1500:]
    assert not out.exists()


@settings(FUZZ, max_examples=30)
@given(st.sampled_from(["truncate", "flip", "empty"]), st.floats(0.0, 0.999), st.booleans())
def test_corrupt_snapshots_are_named(tmp_path, guess_run, how, where, kept):
    src = _fresh(tmp_path, "src")
    shutil.copytree(guess_run, src)
    victim = sorted((src / "snapshots").glob("*.socius"))[0] if kept else src / "snapshot.socius"
    if kept:
        victim.unlink()
        shutil.copy(guess_run / "snapshots" / victim.name, victim)  # its own inode, not the latest's
    _damage(victim, how, where)
    before = sorted(p.name for p in src.rglob("*"))
    rc, text = invoke(GUESS[:-1] + ["--rounds", "3", "--resume", victim, "--out", src, "--quiet"])
    assert rc == 2, f"exit {rc}:\n{text[-2000:]}"
    assert "Traceback" not in text
    assert victim.name in text, text[-1500:]
    assert sorted(p.name for p in src.rglob("*")) == before  # nothing written to the run directory
