"""A minimal OpenAI-compatible completions server that answers after a fixed delay.

For the HTTP-path latency benchmark only (AgentScope's "dummy model that
sleeps 1 s per call"); correctness tests use vLLM's real server. Serves
``POST /v1/completions`` (and ``/v1/chat/completions``) on 127.0.0.1 with
keep-alive, replying ``{"number": k}`` after ``--delay`` seconds::

    python -m socius.bench.dummy_server --port 8765 --delay 1.0
"""
from __future__ import annotations

import argparse
import asyncio
import json


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
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
            if path.endswith("/health") or method == "GET":
                payload = {"status": "ok"}
            else:
                await asyncio.sleep(delay)
                n = int(body.get("n", 1))
                text = '{"number": %d}' % (abs(hash(str(body.get("prompt", "")))) % 60)
                chat = path.endswith("/chat/completions")
                choices = [({"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                            if chat else {"index": i, "text": text, "finish_reason": "stop", "logprobs": None})
                           for i in range(n)]
                payload = {"id": "cmpl-dummy", "object": "chat.completion" if chat else "text_completion",
                           "created": 0, "model": body.get("model", "dummy"), "choices": choices,
                           "usage": {"prompt_tokens": 10, "completion_tokens": 4 * n, "total_tokens": 10 + 4 * n}}
            data = json.dumps(payload).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(data)).encode() + b"\r\nConnection: keep-alive\r\n\r\n" + data)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int, delay: float) -> None:
    server = await asyncio.start_server(lambda r, w: handle(r, w, delay), "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m socius.bench.dummy_server")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--delay", type=float, default=1.0)
    a = p.parse_args(argv)
    asyncio.run(serve(a.port, a.delay))


if __name__ == "__main__":
    main()
