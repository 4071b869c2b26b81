"""A local fake OpenAI-compatible chat server (FastAPI + uvicorn on a free 127.0.0.1 port, in a thread).

It stands in for the external LLM only. `FakeLLM.mode`: "ok" answers like a careful model (labels name the first
<<marked>> token; detection / fuzzing say 1 when a quoted word of the label is in the text / the marks),
"error" answers HTTP 500, "malformed" answers prose without the requested format. It records every request and
the most requests it had in flight at once.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class FakeLLM:
    def __init__(self):
        self.mode = "ok"
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay_s = 0.02
        self.app = self._build()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.delay_s)
                if self.mode == "error":
                    return JSONResponse({"error": "boom"}, status_code=500)
                content = "I think the feature is interesting." if self.mode == "malformed" else answer(body)
                return {"id": "x", "object": "chat.completion", "model": body.get("model"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                     "finish_reason": "stop"}]}
            finally:
                self.in_flight -= 1

        return app

    def start(self) -> "FakeLLM":
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.time() + 10
        while not self._server.started and time.time() < deadline:
            time.sleep(0.02)
        assert self._server.started, "fake LLM server did not start"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()


def answer(body: dict) -> str:
    prompt = body["messages"][-1]["content"]
    if "`Label:" in prompt:
        marked = re.search(r"<<(?!like this)(.+?)>>", prompt)
        return f"Label: the word \"{marked.group(1).strip() if marked else 'nothing'}\""
    label = re.search(r"Feature label: (.*)", prompt).group(1)
    keys = [k.strip().lower() for k in re.findall(r'"([^"]+)"', label)]
    texts = re.findall(r"^\d+\. (.*)$", prompt, flags=re.MULTILINE)
    if "marked" in prompt.split("Texts", 1)[1][:60]:  # fuzzing: judge the marked tokens only
        texts = [" ".join(re.findall(r"<<(?!like this)(.+?)>>", t)) for t in texts]
    return "[" + ", ".join("1" if any(k in t.lower() for k in keys) else "0" for t in texts) + "]"
