"""Runs under injected faults: every failure counted by kind, no agent lost, the same hash twice.

Two fault paths: the engine wrapper (:mod:`socius.llm.engines.faults`, a
``[faults]`` table in the engine config) around the mock engine, and the seeded
HTTP proxy of :mod:`socius.bench.fault_proxy` in front of an OpenAI-compatible
server, so the OpenAI engine's retries face real HTTP failures.

:func:`check_run` reads a run directory and checks the promises:

* every ``decisions.parquet`` row: ``ok + extracted + fallback + failed == agents``;
* every (tick, decision) in the response log has its row, within the run's ticks;
* every acting agent has an outcome: for sampled decisions as many completions
  are logged as the row counts acting agents (one per agent and question: a
  seeker asked twice in a tick answers twice), and ``failed`` equals the agents whose
  answer or extraction request logged an error (at most, where a greedy
  extraction shares one request among agents);
* failures by kind: per (tick, decision), each ``failed_<kind>`` column
  (:data:`~socius.llm.engines.base.ERROR_KINDS`) equals the logged request errors
  of that kind; given the fault engines' ``injected`` counts, the run's
  ``failed_timeout`` / ``failed_http_5xx`` / ``failed_http_429`` equal the injected
  transport faults.

Every run goes twice with the same fault seed. Engine-wrapper runs must reach the
same hash and counts; the HTTP runs must show ``retries > 0`` and report whether
they agree (a wall-clock timeout under load can add a retry). ::

    python -m socius.bench.faults --size small     # CI: 2k-agent social, jobs, HTTP guess
    python -m socius.bench.faults --size full      # the issue's 10k-agent social run

One JSON line: ``{"bench": "faults", "runs": [...], "wall_s", "peak_rss_mb", "load_avg", "ok"}``;
each run gives its agents, ticks, outcome counts, ``failed_by_kind``, ``retries`` and
what was injected. Exits 1 if a check fails.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from socius.bench.common import peak_rss_mb
from socius.bench.fault_proxy import serve_with_proxy

SIZES = {"small": {"social": (2000, 6), "jobs": 6, "guess": 300},
         "full": {"social": (10000, 10), "jobs": 12, "guess": 2000}}
FAULTS = {"rate": 0.3, "seed": 7}
OUTCOMES = ("agents", "ok", "extracted", "fallback", "failed")


@contextlib.contextmanager
def recorded_fault_engines():
    """While open, ``socius.llm.engines.factory.make_engine`` records every
    :class:`~socius.llm.engines.faults.FaultEngine` it builds in the list it yields."""
    from socius.llm.engines import factory
    from socius.llm.engines.faults import FaultEngine

    plain, made = factory.make_engine, []

    def make_engine(*args, **kwargs):
        engine = plain(*args, **kwargs)
        if isinstance(engine, FaultEngine):
            made.append(engine)
        return engine

    factory.make_engine = make_engine
    try:
        yield made
    finally:
        factory.make_engine = plain


def _read_log(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    d = out / "responses"
    if not d.is_dir() or not any(d.glob("*.parquet")):
        return []
    return pq.read_table(d, columns=["tick", "decision", "kind", "temperature", "entities", "error"]).to_pylist()


def check_run(out: Path, injected: dict | None = None) -> dict:
    """Counts of a run directory's decisions and logged errors (see the module docstring);
    raises AssertionError on a lost agent or a failure counted under the wrong kind."""
    import numpy as np
    import pyarrow.parquet as pq

    from socius.ecs import STR
    from socius.llm.engines.base import ERROR_KINDS, error_kinds
    from socius.llm.engines.faults import TRANSPORT

    out = Path(out)
    run = json.loads((out / "run.json").read_text())
    dec = pq.read_table(out / "decisions.parquet").to_pylist()
    cols = [f"failed_{k}" for k in ERROR_KINDS]
    per: dict = defaultdict(Counter)
    for r in dec:
        key = (r["tick"], r["decision"])
        got = r["ok"] + r["extracted"] + r["fallback"] + r["failed"]
        assert got == r["agents"], f"tick {key}: {got} outcomes for {r['agents']} agents"
        assert 0 <= r["tick"] < run["ticks"], f"{key}: a decisions row outside the run's {run['ticks']} ticks"
        per[key].update({k: r[k] for k in (*OUTCOMES, *cols, "retries")})
    answered, failed_agents, errors, sampled, greedy_ex = defaultdict(list), Counter(), defaultdict(list), set(), set()
    for r in _read_log(out):
        key = (r["tick"], r["decision"])
        assert key in per, f"{key}: requests in the response log but no decisions row"
        errors[key].append(r["error"])
        failed_agents[key] += len(r["entities"]) if r["error"] else 0
        if r["kind"] == "answer":
            answered[key] += r["entities"]
            if r["temperature"] > 0:
                sampled.add(key)
        elif r["kind"] == "extract" and r["temperature"] == 0:
            greedy_ex.add(key)  # one logged entity stands for every agent that shared the prompt
    for key, p in per.items():
        logged = error_kinds(np.array(errors.get(key, []), dtype=STR))
        counted = {k: p[f"failed_{k}"] for k in ERROR_KINDS}
        assert counted == logged, f"{key}: failed requests by kind {counted} in decisions, {logged} in the log"
    for key in sampled:
        agents, failed, ents = per[key]["agents"], per[key]["failed"], answered[key]
        assert len(ents) == agents, f"{key}: {len(ents)} logged completions for {agents} acting agents"
        low = failed_agents[key]
        if key in greedy_ex:
            assert low <= failed, f"{key}: {low} failed requests' agents in the log, {failed} counted"
        else:
            assert low == failed, f"{key}: {low} failed (answer + extraction) in the log, {failed} counted"
    sums = {k: sum(p[k] for p in per.values()) for k in OUTCOMES}
    by_kind = {k: sum(p[f"failed_{k}"] for p in per.values()) for k in ERROR_KINDS}
    if injected is not None:
        for k in TRANSPORT:
            assert by_kind[k] == injected.get(k, 0), \
                f"failed_{k}: {by_kind[k]} counted, the fault engine injected {injected.get(k, 0)}"
    return {"population": run.get("config", {}).get("agents", run.get("entities")), "ticks": run["ticks"],
            "decision_ticks": len({k[0] for k in per}), "agent_decisions": sums.pop("agents"), **sums,
            "failed_by_kind": by_kind, "retries": sum(p["retries"] for p in per.values()),
            "requests": sum(len(v) for v in errors.values()), "checked_keys": len(sampled)}


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``socius <argv>`` in this process (quiet); returns (exit code, state hash from run.json)."""
    from socius.app.cli import main

    with contextlib.redirect_stdout(sys.stderr):
        rc = main(argv)
    out = Path(argv[argv.index("--out") + 1])
    info = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    return rc, info.get("state_hash", "")


def _engine_config(path: Path, faults: dict, extra: dict | None = None) -> Path:
    lines = [f"{k} = {json.dumps(v)}" for k, v in (extra or {}).items()]
    lines += ["[faults]"] + [f"{k} = {json.dumps(v)}" for k, v in faults.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def engine_fault_runs(tmp: Path, scenario: list[str], faults: dict = FAULTS, name: str = "run") -> dict:
    """Run ``scenario`` (``socius run`` words, without --out) twice under the same faults; check both
    (against the fault engines' injected counts) and that they agree."""
    conf = _engine_config(tmp / f"{name}-faults.toml", faults)
    hashes, counts, injected, t0 = [], [], [], time.perf_counter()
    for i in range(2):
        out = tmp / f"{name}-{i}"
        with recorded_fault_engines() as made:
            rc, h = run_cli(["run", *scenario, "--engine", "mock", "--engine-config", str(conf),
                             "--out", str(out), "--quiet"])
        assert rc == 0, f"{name}: socius run exited {rc}"
        assert made, f"{name}: no fault engine was built"
        injected.append(dict(sum((Counter(e.injected) for e in made), Counter())))
        counts.append(check_run(out, injected[-1]))
        hashes.append(h)
    assert hashes[0] == hashes[1], f"{name}: the same fault seed gave two hashes {hashes}"
    assert counts[0] == counts[1] and injected[0] == injected[1], f"{name}: the same fault seed gave other counts"
    c = counts[0]
    assert c["failed"] > 0 and c["fallback"] + c["extracted"] > 0, f"{name}: no fault seen {c}"
    return {"run": name, "state_hash": hashes[0], "same_hash_twice": True,
            "wall_s": round(time.perf_counter() - t0, 1), **c, "injected": injected[0]}


def _http_once(tmp: Path, agents: int, rate: float, seed: int, name: str) -> tuple[str, dict, dict]:
    with serve_with_proxy(rate, seed) as (proxy, url):
        conf = tmp / f"{name}-openai.toml"
        conf.write_text(f'base_url = "{url}"\napi_key = "EMPTY"\nmodel = "dummy"\nconcurrency = 32\n'
                        'timeout_s = 0.5\nmax_retries = 3\nbackoff_base_s = 0.01\nbackoff_max_s = 0.05\n')
        out = tmp / name
        rc, h = run_cli(["run", "guess", "--agents", str(agents), "--rounds", "2", "--seed", "1",
                         "--engine", "openai", "--engine-config", str(conf), "--out", str(out), "--quiet"])
        assert rc == 0, f"guess over HTTP: socius run exited {rc}"
        counts = check_run(out)
        injected = dict(sorted(proxy.injected.items()))
    assert sum(v for k, v in injected.items() if k != "none") > 0, "the proxy injected nothing"
    assert counts["retries"] > 0, f"the OpenAI engine retried nothing through the faulty proxy: {counts}"
    return h, counts, injected


def http_fault_run(tmp: Path, agents: int, rate: float = 0.3, seed: int = 7, runs: int = 2) -> dict:
    """A guess round over HTTP through the fault proxy (OpenAI engine, short timeouts, fast retries),
    ``runs`` times with the same seed, each checked. Whether they reach one hash is reported, not
    asserted: a request slower than the client's timeout under load is retried, and a retry draws
    the next fault of that request body."""
    t0 = time.perf_counter()
    done = [_http_once(tmp, agents, rate, seed, f"guess-http-{i}") for i in range(runs)]
    h, counts, injected = done[0]
    flat = [{**d[1], **{f"proxy_{k}": v for k, v in d[2].items()}} for d in done]
    differs = {k: [f.get(k) for f in flat] for k in sorted(set().union(*flat))
               if len({json.dumps(f.get(k)) for f in flat}) > 1}
    return {"run": "guess-http", "state_hash": h, "same_hash_twice": len({d[0] for d in done}) == 1,
            "counts_differ": differs, "wall_s": round(time.perf_counter() - t0, 1), **counts,
            "proxy_injected": injected}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m socius.bench.faults", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--skip-http", action="store_true", help="leave out the HTTP run (no openai package)")
    a = p.parse_args(argv)
    size = SIZES[a.size]
    jobs_toml = Path(__file__).parents[1] / "scenarios" / "jobs" / "jobs.toml"
    runs, ok, load, t0 = [], True, [os.getloadavg()[0]], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        social = ["social", "--agents", str(size["social"][0]), "--steps", str(size["social"][1]), "--seed", "1"]
        cases = [("social", lambda: engine_fault_runs(tmp, social, name="social")),
                 ("jobs", lambda: engine_fault_runs(tmp, ["jobs", "--config", str(jobs_toml), "--steps",
                                                          str(size["jobs"]), "--seed", "1"], name="jobs"))]
        if not a.skip_http:
            cases.append(("guess-http", lambda: http_fault_run(tmp, size["guess"])))
        for name, case in cases:
            try:
                runs.append(case())
            except Exception as e:  # one failing case fails the bench, after the others ran
                ok = False
                runs.append({"run": name, "error": f"{type(e).__name__}: {e}"})
    load.append(os.getloadavg()[0])
    print(json.dumps({"bench": "faults", "size": a.size, "fault_rate": FAULTS["rate"], "fault_seed": FAULTS["seed"],
                      "agents": size["social"][0], "runs": runs, "wall_s": round(time.perf_counter() - t0, 1),
                      "peak_rss_mb": peak_rss_mb(children=True), "load_avg": load, "ok": ok}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
