"""Engine faults: the wrapper is seeded and order-free, and runs under 30 % faults lose no agent.

The long version (a 10k-agent social run, jobs, the HTTP proxy) is ``python -m socius.bench.faults``.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.bench.faults import FAULTS, check_run, engine_fault_runs, recorded_fault_engines
from socius.ecs import STR
from socius.errors import EngineSetupError
from socius.llm.engines.base import RequestBatch, Sampling
from socius.llm.engines.faults import FAULT_KINDS, GARBAGE, FaultConfig, FaultEngine, make_with_faults
from socius.llm.engines.mock import MockEngine, number_policy


def _batch(n: int, tick: int = 3, sampled: bool = False, reps: int = 1) -> RequestBatch:
    seeds = (np.arange(n, dtype=np.int64) * 2654435761) % (2 ** 62)
    return RequestBatch(np.array([f"prompt {i}" for i in range(n)], dtype=STR),
                        Sampling(temperature=0.7 if sampled else 0.0), "", np.full(n, reps), seeds,
                        np.arange(n * reps), tick=tick)


def _engine(rate=0.3, seed=7, **kw) -> FaultEngine:
    return FaultEngine(MockEngine(number_policy(0, 100)), FaultConfig(rate=rate, seed=seed, **kw),
                       sleep=lambda s: None)


def test_rate_and_every_kind_are_injected():
    e = _engine()
    faults = e.draw(_batch(20_000))
    share = (faults >= 0).mean()
    assert abs(share - 0.3) < 0.02, share
    counts = np.bincount(faults[faults >= 0], minlength=len(FAULT_KINDS))
    assert (counts > 0.8 * counts.mean()).all(), counts


def test_transport_faults_fail_and_the_rest_reach_the_engine():
    e = _engine(rate=0.5)
    b = _batch(400, sampled=True, reps=2)
    out = e.generate(b)
    kinds = np.array(FAULT_KINDS)[np.maximum(e.draw(b), 0)]
    hit = e.draw(b) >= 0
    transport = hit & np.isin(kinds, ["timeout", "http_5xx", "http_429"])
    assert (out.failed == transport).all()
    assert set(out.errors[transport].tolist()) <= {"timeout: injected", "http 503: injected", "http 429: injected"}
    assert e.inner.requests == int((~transport).sum())  # failed requests never reached the engine
    clean = MockEngine(number_policy(0, 100)).generate(b).texts
    per = np.repeat(kinds, b.n)
    hit_c = np.repeat(hit, b.n)
    garbage = hit_c & (per == "garbage")
    assert np.isin(out.texts[garbage], np.array(GARBAGE, dtype=STR)).all() and garbage.any()
    trunc = hit_c & (per == "truncated")
    lens = np.strings.str_len(clean[trunc])
    assert (np.strings.str_len(out.texts[trunc]) == lens // 2).all() and trunc.any()
    assert (out.texts[trunc] != clean[trunc]).all()
    untouched = ~hit_c | (per == "slow")
    assert (out.texts[untouched] == clean[untouched]).all()
    assert sum(e.injected.values()) == int(hit.sum())


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(0, 2 ** 31), st.randoms(use_true_random=False))
def test_faults_do_not_depend_on_batch_order_or_slicing(n, seed, rnd):
    """The same request gets the same fault in any batch: shuffled, or split into two calls."""
    e = _engine(seed=seed)
    b = _batch(n)
    whole = e.generate(b)
    perm = np.array(rnd.sample(range(n), n))
    shuffled = e.generate(b.take(perm))
    assert (shuffled.errors == whole.errors[perm]).all()
    assert (shuffled.texts == whole.texts[perm]).all()
    cut = rnd.randint(0, n)
    parts = [e.generate(b.slice(0, cut)), e.generate(b.slice(cut, n))]
    assert (np.concatenate([p.errors for p in parts]) == whole.errors).all()


def test_another_fault_seed_gives_other_faults():
    b = _batch(2000)
    assert (_engine(seed=1).draw(b) != _engine(seed=2).draw(b)).any()


@pytest.mark.parametrize("table, field", [
    ({"rate": 1.5}, "faults.rate"), ({"rate": -0.1}, "faults.rate"), ({"rate": "x"}, "faults.rate"),
    ({"rate": float("nan")}, "faults.rate"), ({"seed": -1}, "faults.seed"), ({"seed": 1.5}, "faults.seed"),
    ({"kinds": ["timeout", "meteor"]}, "faults.kinds"), ({"kinds": []}, "faults.kinds"),
    ({"kinds": "timeout"}, "faults.kinds"), ({"slow_s": -1}, "faults.slow_s"), ({"speed": 1}, "unknown faults"),
    ([1, 2], "'faults' must be a table")])
def test_bad_fault_tables_name_the_field(table, field):
    with pytest.raises(EngineSetupError, match=field.replace(".", r"\.")):
        make_with_faults(lambda kind, config, **kw: MockEngine(number_policy(0, 1)), "mock",
                         config={"faults": table})


def test_make_with_faults_wraps_only_when_asked():
    made = []

    def make(kind, config, **kw):
        made.append(config)
        return MockEngine(number_policy(0, 1))
    assert isinstance(make_with_faults(make, "mock", config={"per_request_s": 0.0}), MockEngine)
    e = make_with_faults(make, "mock", config={"per_request_s": 0.0, "faults": {"rate": 0.2, "kinds": ["slow"]}})
    assert isinstance(e, FaultEngine) and e.config.kinds == ("slow",) and e.config.rate == 0.2
    assert made[-1] == {"per_request_s": 0.0}  # the wrapped engine never sees the faults table
    assert e.loads == 0  # the wrapped engine's attributes show through


def test_a_social_run_under_30_percent_faults_loses_no_agent_and_repeats_its_hash(tmp_path):
    rec = engine_fault_runs(tmp_path, ["social", "--agents", "1500", "--steps", "5", "--seed", "3"], name="social")
    assert rec["same_hash_twice"]
    assert rec["ok"] + rec["extracted"] + rec["fallback"] + rec["failed"] == rec["agent_decisions"] > 500
    kinds = rec["failed_by_kind"]
    assert {k for k, v in kinds.items() if v} == {"timeout", "http_5xx", "http_429"}
    assert all(kinds[k] == rec["injected"][k] for k in ("timeout", "http_5xx", "http_429"))  # every one counted
    assert 0 < sum(kinds.values()) <= rec["failed"]     # a failed request fails each of its agents once
    assert 0.15 < rec["failed"] / rec["agent_decisions"] < 0.35  # ~20 % transport faults
    assert rec["extracted"] + rec["fallback"] > 0      # garbage and truncated replies were caught
    assert rec["retries"] == 0                          # the fault wrapper around the mock never retries


def test_another_fault_seed_changes_the_run(tmp_path):
    words = ["social", "--agents", "600", "--steps", "4", "--seed", "3"]
    a = engine_fault_runs(tmp_path, words, faults={**FAULTS, "seed": 1}, name="a")
    b = engine_fault_runs(tmp_path, words, faults={**FAULTS, "seed": 2}, name="b")
    assert a["state_hash"] != b["state_hash"]


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """A small social run under faults: (its directory, the fault engine's injected counts)."""
    tmp = tmp_path_factory.mktemp("faulty")
    rec = engine_fault_runs(tmp, ["social", "--agents", "400", "--steps", "4", "--seed", "3"], name="s")
    return tmp / "s-0", rec["injected"]


def _tampered(run, tmp_path, column: str, delta: int):
    """A copy of ``run`` with ``delta`` added to ``column`` of the last decisions row that can take it."""
    import shutil
    import pyarrow as pa
    import pyarrow.parquet as pq
    copy = tmp_path / "tampered"
    shutil.copytree(run, copy)
    dec = pq.read_table(copy / "decisions.parquet")
    col = dec.column(column).to_numpy().copy()
    row = int(np.flatnonzero(col + delta >= 0)[-1])
    col[row] += delta
    pq.write_table(dec.set_column(dec.schema.get_field_index(column), column, pa.array(col)),
                   copy / "decisions.parquet")
    return copy


def test_check_run_passes_the_run_as_written(faulty_run):
    run, injected = faulty_run
    counts = check_run(run, injected)
    assert counts["failed_by_kind"]["timeout"] == injected["timeout"] > 0


def test_check_run_finds_a_lost_agent(faulty_run, tmp_path):
    with pytest.raises(AssertionError, match="outcomes for"):
        check_run(_tampered(faulty_run[0], tmp_path, "ok", -1))  # one agent's outcome goes missing


@pytest.mark.parametrize("kind", ["failed_timeout", "failed_http_5xx", "failed_other", "failed_connection"])
def test_check_run_finds_a_failure_counted_under_the_wrong_kind(faulty_run, tmp_path, kind):
    with pytest.raises(AssertionError, match="by kind"):
        check_run(_tampered(faulty_run[0], tmp_path, kind, 1))


@pytest.mark.parametrize("kind", ["timeout", "http_5xx", "http_429"])
def test_check_run_compares_the_counts_with_the_injected_faults(faulty_run, kind):
    run, injected = faulty_run
    with pytest.raises(AssertionError, match=f"failed_{kind}"):
        check_run(run, {**injected, kind: injected[kind] + 1})


@pytest.mark.slow
def test_a_jobs_run_under_30_percent_faults(tmp_path):
    from pathlib import Path
    import socius
    toml = Path(socius.__file__).parent / "scenarios" / "jobs" / "jobs.toml"
    rec = engine_fault_runs(tmp_path, ["jobs", "--config", str(toml), "--steps", "4", "--seed", "1"], name="jobs")
    assert rec["same_hash_twice"] and rec["failed"] > 0 and rec["checked_keys"] > 0


@pytest.mark.slow
def test_the_http_path_through_the_fault_proxy(tmp_path):
    pytest.importorskip("openai", reason="the OpenAI engine needs the openai package (test extra)")
    from socius.bench.faults import http_fault_run
    rec = http_fault_run(tmp_path, agents=200, runs=1)
    injected = rec["proxy_injected"]
    assert all(injected.get(k, 0) > 0 for k in ("timeout", "http_5xx", "http_429", "garbage", "truncated"))
    assert rec["ok"] + rec["extracted"] + rec["fallback"] + rec["failed"] == rec["agent_decisions"] == 400
    assert rec["ok"] > 0.7 * rec["agent_decisions"]  # retries recover most transport faults
    assert rec["retries"] > 0


def test_the_factory_builds_fault_engines_and_the_bench_records_them():
    from socius.llm.engines import factory
    plain = factory.make_engine
    with recorded_fault_engines() as made:
        e = factory.make_engine("mock", policy=number_policy(0, 1), config={"faults": {"rate": 0.3}})
        factory.make_engine("mock", policy=number_policy(0, 1), config={})
    assert isinstance(e, FaultEngine) and isinstance(e.inner, MockEngine)
    assert made == [e]                     # only the fault engine, once
    assert factory.make_engine is plain    # put back
