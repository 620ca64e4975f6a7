"""An OpenAI-compatible chat completions server that answers like a remote LLM: after a
configurable latency, streaming tokens over it when the client asks for a stream.

Standard library only (asyncio streams, HTTP/1.1 keep-alive), so thousands of concurrent calls
cost a coroutine each rather than a thread. For `make bench-app`; not a fake of any test.

    python benchmarks/llm_stub.py --port 8100 --latency 2.0 --jitter 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

PLAN = "rolling update capacity\nreadiness probes traffic"
ANSWER = ("A rolling update replaces pods gradually and keeps capacity with maxUnavailable 0 "
          "[1]; readiness probes gate traffic to new pods [2].")


def completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-{random.getrandbits(48):x}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 420, "completion_tokens": 60, "total_tokens": 480}}


def reply_text(body: dict[str, Any]) -> str:
    system = next((m["content"] for m in body.get("messages", []) if m["role"] == "system"), "")
    return PLAN if "plan research" in system else ANSWER


class Stub:
    def __init__(self, latency: float, jitter: float) -> None:
        self.latency, self.jitter = latency, jitter

    def delay(self) -> float:
        return max(0.0, self.latency + random.uniform(-self.jitter, self.jitter))

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = json.loads(await reader.readexactly(length)) if length else {}
                if body.get("stream"):
                    await self._stream(writer, body)
                else:
                    await asyncio.sleep(self.delay())
                    self._send(writer, json.dumps(completion(body, reply_text(body))).encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @staticmethod
    def _send(writer: asyncio.StreamWriter, payload: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)

    async def _stream(self, writer: asyncio.StreamWriter, body: dict[str, Any]) -> None:
        """Server-sent chunks, one word at a time, spread over the latency."""
        words = reply_text(body).split(" ")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        pause = self.delay() / len(words)
        for n, word in enumerate(words):
            await asyncio.sleep(pause)
            chunk = {"id": "chatcmpl-stub", "object": "chat.completion.chunk",
                     "model": body.get("model", "stub"), "choices": [{
                         "index": 0, "delta": {"content": word + (" " if n < len(words) - 1
                                                                  else "")},
                         "finish_reason": None}]}
            event = f"data: {json.dumps(chunk)}\n\n".encode()
            writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            await writer.drain()
        done = b"data: [DONE]\n\n"
        writer.write(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per call")
    parser.add_argument("--jitter", type=float, default=0.5, help="+/- seconds, uniform")
    options = parser.parse_args()
    stub = Stub(options.latency, options.jitter)
    server = await asyncio.start_server(stub.serve, "127.0.0.1", options.port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
