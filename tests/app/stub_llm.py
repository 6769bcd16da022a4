"""A tiny OpenAI-compatible chat-completions server on loopback, for backend tests."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


class StubServer:
    """A tiny OpenAI-compatible chat-completions server on loopback, recording requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.delay_s = 0.0
        self.status = 200
        self.fail_next = 0  # the next this many requests answer fail_status, then `status`
        self.fail_status = 500
        # the assistant text: fixed, or computed from the request body
        self.content: str | Callable[[dict[str, Any]], str] = " In Paris [1]. "
        app = FastAPI()
        app.post("/v1/chat/completions")(self._complete)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )

    async def _complete(self, request: Request) -> Any:
        body = await request.json()
        self.requests.append({"body": body, "auth": request.headers.get("authorization")})
        failing = self.fail_next > 0  # counted on arrival: a delayed request takes no other's
        self.fail_next -= failing
        await asyncio.sleep(self.delay_s)
        status = self.fail_status if failing else self.status
        if status != 200:
            return JSONResponse({"error": "boom"}, status_code=status)
        content = self.content(body) if callable(self.content) else self.content
        if body.get("stream"):
            return StreamingResponse(
                _chunks(body["model"], content), media_type="text/event-stream"
            )
        return {
            "id": "x",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": content,
                    },
                }
            ],
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


async def _chunks(model: str, content: str) -> AsyncIterator[str]:
    """The content as OpenAI stream chunks, one word at a time, then ``[DONE]``."""
    yield 'data: {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}\n\n'
    for word in content.split(" "):
        delta = {"choices": [{"index": 0, "delta": {"content": word + " "}}], "model": model}
        yield f"data: {json.dumps(delta)}\n\n"
        await asyncio.sleep(0)
    yield "data: [DONE]\n\n"


@pytest.fixture(scope="session")
def stub_llm() -> Iterator[StubServer]:
    server = StubServer()
    thread = threading.Thread(target=server.server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.server.started and time.time() < deadline:
        time.sleep(0.05)
    yield server
    server.server.should_exit = True
    thread.join(5)
