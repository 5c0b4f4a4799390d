"""A minimal OpenAI-compatible completions server that answers after a fixed delay.

For the HTTP-path latency benchmark and the engine's HTTP tests (correctness
against a real model uses vLLM's own server). Serves ``POST /v1/completions``
(``prompt`` a string or, as vLLM does, a list: ``choices[p * n + j]`` is prompt
``p``'s ``j``-th completion, usage summed) and ``/v1/chat/completions`` on
127.0.0.1 with keep-alive, replying ``{"number": k}`` after ``--delay`` seconds
(once per request, however many prompts it holds). ``k`` is a CRC-32 of the
model name and prompt (and, when ``temperature > 0``, of ``seed`` and the
choice), so one prompt gets the same reply alone or in a list. Test hooks:
``--refuse-lists`` answers 400 to a list (a server without lists); a prompt
containing ``BAD`` fails its whole request with 400 (as vLLM does for a prompt
over the context length); ``--flaky-lists K`` answers 503 to the first ``K``
list requests; ``--first-only`` answers only a list's first prompt (a server that
ignores lists). ``GET /stats`` gives counts of requests, list requests and
prompts per model, and the most requests it held at once (``max_in_flight``)::

    python -m socius.bench.dummy_server --port 8765 --delay 1.0
"""
from __future__ import annotations

import argparse
import asyncio
import json
import zlib


def reply_number(prompt: str, model: str, seed=None, choice: int = 0, sampled: bool = False) -> int:
    """The number the server answers ``prompt`` with (what tests compare against)."""
    key = f"{model}|{seed}|{choice}|{prompt}" if sampled else f"{model}|{prompt}"
    return zlib.crc32(key.encode()) % 60


class DummyServer:
    """The server's behaviour and counters (one instance per process)."""

    def __init__(self, delay: float, refuse_lists: bool = False, flaky_lists: int = 0, first_only: bool = False):
        self.delay, self.refuse_lists, self.flaky_left = delay, refuse_lists, flaky_lists
        self.first_only = first_only
        self.stats = {"requests": 0, "list_requests": 0, "prompts": 0, "models": {}, "in_flight": 0,
                      "max_in_flight": 0}

    async def answer(self, path: str, body: dict) -> tuple[int, dict]:
        chat = path.endswith("/chat/completions")
        prompt = body.get("prompt", "")
        is_list = isinstance(prompt, list)
        prompts = [m.get("content", "") for m in body.get("messages", [])][-1:] if chat else (
            prompt if is_list else [prompt])
        model = str(body.get("model", "dummy"))
        st = self.stats
        st["requests"] += 1
        st["list_requests"] += is_list
        if is_list and self.refuse_lists:
            return 400, {"error": {"message": "prompt must be a string", "type": "BadRequestError", "code": 400}}
        if is_list and self.flaky_left > 0:
            self.flaky_left -= 1
            return 503, {"error": {"message": "overloaded", "type": "ServiceUnavailable", "code": 503}}
        if is_list and self.first_only:
            prompts = prompts[:1]
        if any("BAD" in str(p) for p in prompts):
            return 400, {"error": {"message": "prompt is too long", "type": "BadRequestError", "code": 400}}
        st["prompts"] += len(prompts)
        st["models"][model] = st["models"].get(model, 0) + len(prompts)
        st["in_flight"] += 1
        st["max_in_flight"] = max(st["max_in_flight"], st["in_flight"])
        try:
            await asyncio.sleep(self.delay)
        finally:
            st["in_flight"] -= 1
        n = int(body.get("n") or 1)
        sampled = float(body.get("temperature") or 0.0) > 0.0
        choices = []
        for p, text_in in enumerate(prompts):
            for j in range(n):
                text = '{"number": %d}' % reply_number(str(text_in), model, body.get("seed"), j, sampled)
                idx = p * n + j
                choices.append({"index": idx, "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop"} if chat else
                               {"index": idx, "text": text, "finish_reason": "stop", "logprobs": None})
        k = len(prompts)
        return 200, {"id": "cmpl-dummy", "object": "chat.completion" if chat else "text_completion",
                     "created": 0, "model": model, "choices": choices,
                     "usage": {"prompt_tokens": 10 * k, "completion_tokens": 4 * n * k,
                               "total_tokens": (10 + 4 * n) * k}}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = json.loads(await reader.readexactly(length)) if length else {}
                if path.endswith("/stats"):
                    status, payload = 200, self.stats
                elif path.endswith("/health") or method == "GET":
                    status, payload = 200, {"status": "ok"}
                else:
                    status, payload = await self.answer(path, body)
                data = json.dumps(payload).encode()
                reason = {200: b"OK", 400: b"Bad Request", 503: b"Service Unavailable"}[status]
                writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                             b"Connection: keep-alive\r\n\r\n" % (status, reason, len(data)) + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError, ValueError):
            pass
        finally:
            writer.close()


async def serve(port: int, server: DummyServer) -> None:
    srv = await asyncio.start_server(server.handle, "127.0.0.1", port, backlog=4096, limit=2 ** 26)
    async with srv:
        await srv.serve_forever()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m socius.bench.dummy_server")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--delay", type=float, default=1.0)
    p.add_argument("--refuse-lists", action="store_true", help="answer 400 to a list of prompts")
    p.add_argument("--first-only", action="store_true", help="answer only the first prompt of a list")
    p.add_argument("--flaky-lists", type=int, default=0, help="answer 503 to the first K list requests")
    a = p.parse_args(argv)
    asyncio.run(serve(a.port, DummyServer(a.delay, a.refuse_lists, a.flaky_lists, a.first_only)))


if __name__ == "__main__":
    main()
