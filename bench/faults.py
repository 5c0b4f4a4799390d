"""Runs under injected faults: every failure counted, no agent lost, the same hash twice.

Two fault paths: the engine wrapper (:mod:`socius.llm.engines.faults`, a
``[faults]`` table in the engine config) around the mock engine, and
:class:`FaultProxy`, a seeded HTTP proxy in front of an OpenAI-compatible
server (``bench/dummy_server.py``) that times out, answers 503 or 429, returns
garbage text or a truncated JSON body, or is slow — the OpenAI engine's
retries then face real HTTP failures.

:func:`check_run` reads a run directory and checks the promises:
``ok + extracted + fallback + failed == agents`` in every ``decisions.parquet``
row, every acting agent's completion is in the response log (sampled
decisions: one logged entity per agent), and ``failed`` equals the agents
whose answer or extraction request logged an error; it returns the counts, with the logged
errors by kind. ::

    python -m socius.bench.faults --size small     # CI: 2k-agent social, jobs, HTTP guess (~1 min on 2 cores)
    python -m socius.bench.faults --size full      # the issue's 10k-agent social run

One JSON line: ``{"bench": "faults", "runs": [...], "ok": true}``; exits 1 if a check fails.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

SIZES = {"small": {"social": (2000, 6), "jobs": 6, "guess": 300},
         "full": {"social": (10000, 10), "jobs": 12, "guess": 2000}}
FAULTS = {"rate": 0.3, "seed": 7}
PROXY_KINDS = ("timeout", "http_5xx", "http_429", "garbage", "truncated", "slow")


@contextlib.contextmanager
def faulty_factory():
    """Make sure ``socius.llm.engines.factory.make_engine`` honours a ``[faults]`` table (patched in
    for the duration when the factory does not yet call :func:`~socius.llm.engines.faults.make_with_faults`)."""
    from socius.llm.engines import factory
    from socius.llm.engines.faults import make_with_faults

    try:
        factory.make_engine("mock", policy=lambda b, s: None, config={"faults": {}})
        yield
        return
    except Exception:
        pass
    plain = factory.make_engine

    def make_engine(kind, *, seed=0, policy=None, config=None):
        return make_with_faults(plain, kind, seed=seed, policy=policy, config=config)

    factory.make_engine = make_engine
    try:
        yield
    finally:
        factory.make_engine = plain


def _error_kind(err: str) -> str:
    return err.split(":", 1)[0].split(" after ", 1)[0].strip()


def check_run(out: Path) -> dict:
    """Counts of a run directory's decisions and logged errors; raises AssertionError on a lost agent."""
    import pyarrow.parquet as pq

    out = Path(out)
    dec = pq.read_table(out / "decisions.parquet").to_pylist()
    log = pq.read_table(out / "responses").to_pylist() if (out / "responses").is_dir() else []
    sums = {k: sum(r[k] for r in dec) for k in ("agents", "ok", "extracted", "fallback", "failed")}
    for r in dec:
        got = r["ok"] + r["extracted"] + r["fallback"] + r["failed"]
        assert got == r["agents"], f"tick {r['tick']} {r['decision']}: {got} outcomes for {r['agents']} agents"
    per = {}
    for r in dec:
        per.setdefault((r["tick"], r["decision"]), [0, 0])
        per[(r["tick"], r["decision"])][0] += r["agents"]
        per[(r["tick"], r["decision"])][1] += r["failed"]
    logged, failed_ans, failed_ex, sampled, greedy_ex = Counter(), Counter(), Counter(), set(), set()
    for r in log:
        key = (r["tick"], r["decision"])
        if r["kind"] == "answer":
            logged[key] += len(r["entities"])
            failed_ans[key] += len(r["entities"]) if r["error"] else 0
            if r["temperature"] > 0:
                sampled.add(key)
        elif r["kind"] == "extract":
            failed_ex[key] += len(r["entities"]) if r["error"] else 0
            if r["temperature"] == 0:
                greedy_ex.add(key)  # one logged entity stands for every agent that shared the prompt
    for key in sampled:
        agents, failed = per.get(key, (0, 0))
        assert logged[key] == agents, f"{key}: {logged[key]} logged completions for {agents} acting agents"
        low = failed_ans[key] + failed_ex[key]
        if key in greedy_ex:
            assert low <= failed, f"{key}: {low} failed requests' agents in the log, {failed} counted"
        else:
            assert low == failed, f"{key}: {low} failed (answer + extraction) in the log, {failed} counted"
    errors = Counter(_error_kind(r["error"]) for r in log if r["error"])
    return {**sums, "ticks": len({r["tick"] for r in dec}), "requests": len(log),
            "errors": dict(sorted(errors.items())), "checked_keys": len(sampled)}


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
    """Run ``scenario`` (``socius run`` words, without --out) twice under the same faults; check both."""
    conf = _engine_config(tmp / f"{name}-faults.toml", faults)
    hashes, t0 = [], time.perf_counter()
    with faulty_factory():
        for i in range(2):
            out = tmp / f"{name}-{i}"
            rc, h = run_cli(["run", *scenario, "--engine", "mock", "--engine-config", str(conf),
                             "--out", str(out), "--quiet"])
            assert rc == 0, f"{name}: socius run exited {rc}"
            hashes.append(h)
    assert hashes[0] == hashes[1], f"{name}: the same fault seed gave two hashes {hashes}"
    counts = check_run(tmp / f"{name}-0")
    assert counts["failed"] > 0 and counts["fallback"] + counts["extracted"] > 0, f"{name}: no fault seen {counts}"
    return {"run": name, "state_hash": hashes[0], "same_hash_twice": True,
            "wall_s": round(time.perf_counter() - t0, 1), **counts}


class FaultProxy:
    """A seeded HTTP proxy in front of an OpenAI-compatible server (HTTP/1.1, keep-alive, Content-Length).

    Each request's fault is drawn from a hash of (seed, request body, how many times that body was
    seen), so a retry may succeed and the same seed gives the same faults for the same requests.
    """

    def __init__(self, upstream_port: int, rate: float, seed: int, kinds=PROXY_KINDS,
                 hang_s: float = 2.0, slow_s: float = 0.05):
        self.upstream_port, self.rate, self.seed, self.kinds = upstream_port, rate, seed, tuple(kinds)
        self.hang_s, self.slow_s = hang_s, slow_s
        self.seen: Counter = Counter()
        self.injected: Counter = Counter()

    def fault(self, body: bytes) -> str:
        digest = hashlib.blake2b(body, digest_size=16, key=str(self.seed).encode()).digest()
        self.seen[digest] += 1
        u = hashlib.blake2b(digest + self.seen[digest].to_bytes(4, "little"), digest_size=8).digest()
        x = int.from_bytes(u, "little") / 2.0 ** 64
        if x >= self.rate:
            return ""
        return self.kinds[int(x / self.rate * len(self.kinds)) % len(self.kinds)]

    @staticmethod
    async def _read(reader) -> tuple[bytes, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode("latin-1").split("\r\n")[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        return head, (await reader.readexactly(length) if length else b"")

    @staticmethod
    def _reply(status: str, body: bytes, extra: str = "") -> bytes:
        return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"{extra}Connection: keep-alive\r\n\r\n").encode() + body

    async def handle(self, reader, writer) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            while True:
                head, body = await self._read(reader)
                kind = self.fault(body) if body else ""
                self.injected[kind or "none"] += 1
                if kind == "timeout":
                    await asyncio.sleep(self.hang_s)
                    break  # the client gave up already; drop the connection
                if kind in ("http_5xx", "http_429"):
                    code = "503 Service Unavailable" if kind == "http_5xx" else "429 Too Many Requests"
                    writer.write(self._reply(code, b'{"error": {"message": "injected"}}',
                                             "Retry-After: 0\r\n" if kind == "http_429" else ""))
                    await writer.drain()
                    continue
                if kind == "slow":
                    await asyncio.sleep(self.slow_s)
                up_w.write(head + body)
                await up_w.drain()
                r_head, r_body = await self._read(up_r)
                if kind == "garbage":
                    reply = json.loads(r_body)
                    for c in reply.get("choices", []):
                        c["text"] = "<html>502 Bad Gateway</html>"
                        if "message" in c:
                            c["message"]["content"] = c.pop("text")
                    r_body = json.dumps(reply).encode()
                elif kind == "truncated":
                    r_body = r_body[: len(r_body) // 2]
                writer.write(self._reply(r_head.split(b"\r\n", 1)[0].split(b" ", 1)[1].decode(), r_body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError, ValueError):
            pass
        except asyncio.CancelledError:  # the proxy is shutting down with a connection still hanging: drop it
            pass
        finally:
            up_w.close()
            writer.close()

    async def serve(self, port: int) -> None:
        server = await asyncio.start_server(self.handle, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


async def _cancel_all() -> None:
    """Cancel every other task of this loop (the server, hanging handlers) and wait for them."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.contextmanager
def serve_with_proxy(rate: float = 0.3, seed: int = 7, delay: float = 0.0):
    """A dummy OpenAI-compatible server (subprocess) behind a :class:`FaultProxy` (a thread);
    yields ``(proxy, base_url)``."""
    import threading

    up, port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-m", "socius.bench.dummy_server", "--port", str(up),
                               "--delay", str(delay)])
    proxy = FaultProxy(up, rate, seed)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    task = None
    try:
        wait_port(up)
        task = asyncio.run_coroutine_threadsafe(proxy.serve(port), loop)
        wait_port(port)
        yield proxy, f"http://127.0.0.1:{port}/v1"
    finally:
        if task is not None:
            asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        server.terminate()
        server.wait(timeout=10)


def http_fault_run(tmp: Path, agents: int, rate: float = 0.3, seed: int = 7) -> dict:
    """A guess round over HTTP through the fault proxy (OpenAI engine, short timeouts, fast retries)."""
    t0 = time.perf_counter()
    with serve_with_proxy(rate, seed) as (proxy, url):
        conf = tmp / "openai.toml"
        conf.write_text(f'base_url = "{url}"\napi_key = "EMPTY"\nmodel = "dummy"\nconcurrency = 32\n'
                        'timeout_s = 0.5\nmax_retries = 3\nbackoff_base_s = 0.01\nbackoff_max_s = 0.05\n')
        out = tmp / "guess-http"
        rc, h = run_cli(["run", "guess", "--agents", str(agents), "--rounds", "2", "--seed", "1",
                         "--engine", "openai", "--engine-config", str(conf), "--out", str(out), "--quiet"])
        assert rc == 0, f"guess over HTTP: socius run exited {rc}"
        counts = check_run(out)
        injected = dict(proxy.injected)
    assert sum(v for k, v in injected.items() if k != "none") > 0, "the proxy injected nothing"
    return {"run": "guess-http", "state_hash": h, "wall_s": round(time.perf_counter() - t0, 1),
            "proxy_injected": injected, **counts}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m socius.bench.faults", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--skip-http", action="store_true", help="leave out the HTTP run (no openai package)")
    a = p.parse_args(argv)
    size = SIZES[a.size]
    runs, ok = [], True
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        cases = [("social", lambda: engine_fault_runs(tmp, ["social", "--agents", str(size["social"][0]), "--steps",
                                                           str(size["social"][1]), "--seed", "1"], name="social")),
                 ("jobs", lambda: engine_fault_runs(tmp, ["jobs", "--config", str(Path(__file__).parents[1] / "scenarios"
                                                          / "jobs" / "jobs.toml"), "--steps", str(size["jobs"]),
                                                          "--seed", "1"], name="jobs"))]
        if not a.skip_http:
            cases.append(("guess-http", lambda: http_fault_run(tmp, size["guess"])))
        for name, case in cases:
            try:
                runs.append(case())
            except Exception as e:  # one failing case fails the bench, after the others ran
                ok = False
                runs.append({"run": name, "error": f"{type(e).__name__}: {e}"})
    print(json.dumps({"bench": "faults", "size": a.size, "fault_rate": FAULTS["rate"], "runs": runs, "ok": ok}),
          flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
