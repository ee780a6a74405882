"""ASGI middleware in front of every route: a request body size limit (413) and, for a
server bound to loopback, a Host-header check (a page on another site that rebinds
its DNS name to 127.0.0.1 sends its own name as Host; refusing it keeps that page
from reading this server or running the model)."""

from __future__ import annotations

import json

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def host_name(header: str) -> str:
    """The host part of a Host header: `[::1]:8000` -> `::1`, `localhost:80` -> `localhost`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class RequestGuard:
    def __init__(self, app, max_body_bytes: int, allowed_hosts: frozenset[str] | None = None,
                 path_limits: dict[str, int] | None = None):
        """path_limits: another body limit for these exact paths (the image upload)."""
        self.app, self.max_body_bytes, self.allowed_hosts = app, max_body_bytes, allowed_hosts
        self.path_limits = path_limits or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.allowed_hosts is not None and host_name(headers.get("host", "")) not in self.allowed_hosts:
            return await _reply(send, 421, f"Host {headers.get('host', '')[:100]!r} is not served here: open the server "
                                           f"as http://127.0.0.1 or http://localhost")
        limit = self.path_limits.get(scope.get("path", ""), self.max_body_bytes)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await _reply(send, 413, f"request body of {int(declared):,} bytes; the limit is {limit:,}")
        seen, started, refused = 0, False, False

        async def counted_receive():
            # A chunked body without Content-Length is counted as it arrives; past the
            # limit the client gets the 413 and the app sees a disconnect (an exception
            # here would become FastAPI's 400 "error parsing the body").
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    if not started:
                        await _reply(send, 413, f"request body over the {limit:,}-byte limit")
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message):
            nonlocal started
            if refused:
                return  # the 413 is the answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, tracked_send)


async def _reply(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
