"""Model work in one place: with ``serve --workers N`` the language model lives in one process of its own (the
*model process*, the same app on a Unix socket, ``FEATUREBOARD_MODEL_SOCKET``), and every web worker forwards the
requests that need it (live inference, attribution, steering and its report card, "test this feature") there,
streaming the answer back. Pages, labels and the API are answered by the workers themselves over the shared
database.

The model process applies its own checks (origin, CSRF, sessions, rate limits in the shared store) to the
forwarded request, which keeps its headers; the visitor's address travels in ``X-Featureboard-Client``, trusted
only on the Unix socket (where uvicorn reports no client address), so per-address limits still count visitors.
"""

from __future__ import annotations

import re

import httpx

from app.errors import Busy

MODEL_PATH = re.compile(r"^(?:/api/v1)?(?:/live(?:/.*)?|/steer(?:/.*)?|/sources/[^/]+/live"
                        r"|/sources/[^/]+/features/[^/]+/test)$")
CLIENT_HEADER = "x-featureboard-client"
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection", CLIENT_HEADER}


def needs_model(path: str) -> bool:
    return bool(MODEL_PATH.match(path))


class ModelForwardMiddleware:
    """In a web worker with ``model_socket`` set: requests that need the model go to the model process."""

    def __init__(self, app):
        self.app = app
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def __call__(self, scope, receive, send):
        socket = scope["type"] == "http" and scope["app"].state.settings.model_socket
        if not socket or not needs_model(scope["path"]):
            return await self.app(scope, receive, send)
        client = self._clients.get(socket)
        if client is None:
            client = self._clients[socket] = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=socket), timeout=httpx.Timeout(None, connect=5.0))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
                   if k.decode("latin-1").lower() not in HOP_HEADERS]
        if scope.get("client"):
            headers.append((CLIENT_HEADER, f"{scope['client'][0]}:{scope['client'][1]}"))
        query = scope.get("query_string", b"").decode("latin-1")
        url = "http://model" + scope.get("raw_path", scope["path"].encode()).decode("latin-1") + (
            f"?{query}" if query else "")
        try:
            request = client.build_request(scope["method"], url, headers=headers, content=body)
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            from app.http.middleware import _answer_error

            return await _answer_error(scope, receive, send, Busy(
                f"The model process (at {socket}) does not answer ({type(exc).__name__}); it may still be "
                "loading the model. Try again shortly.", retry_after=5))
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k, v) for k, v in response.headers.raw if k.lower() not in
                                    {h.encode() for h in HOP_HEADERS}]})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


class ForwardedClientMiddleware:
    """In the model process: a request that came over the Unix socket (no client address) from a web worker
    gets the visitor's address that the worker forwarded."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("client") is None:
            for key, value in scope["headers"]:
                if key == CLIENT_HEADER.encode():
                    host, _, port = value.decode("latin-1").rpartition(":")
                    scope = {**scope, "client": (host, int(port) if port.isdigit() else 0)}
                    break
        await self.app(scope, receive, send)
