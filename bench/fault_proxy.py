"""A seeded HTTP proxy that injects faults in front of an OpenAI-compatible server.

:class:`FaultProxy` sits between the OpenAI engine and ``bench/dummy_server.py``
and, for a seeded share of the requests, times out (holds the request, then
drops the connection), answers 503 or 429 (with ``Retry-After: 0``), returns
garbage reply text or a truncated JSON body, or is slow — so the engine's own
retries face real HTTP failures. A request's fault is drawn from a hash of
(seed, request body, how many times that body was seen): a retry may succeed,
and the same seed gives the same faults for the same requests in any order.
:attr:`FaultProxy.injected` counts HTTP requests per fault (``"none"``: passed
through) — attempts, not the engine's final outcomes. :func:`serve_with_proxy`
starts the server (a subprocess) and the proxy (a thread's event loop).
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import subprocess
import sys
import time
from collections import Counter

PROXY_KINDS = ("timeout", "http_5xx", "http_429", "garbage", "truncated", "slow")


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
