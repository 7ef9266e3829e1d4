"""The request id: taken from the client or made here, logged on every line, echoed back."""

import itertools
import os
import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referrals.logs import request_id

HEADER = b"x-request-id"
# A client's id goes into our logs and our response: only a short, plain token may come
# through (no spaces, quotes or newlines that could forge a log line or a header).
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class _Ids:
    """Unique ids without a system call each (uuid4 reads os.urandom: half this
    middleware's cost): a random prefix per process, then a counter."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)  # forked workers must not share it

    def reset(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.count = itertools.count(1)

    def new(self) -> str:
        return f"{self.prefix}{next(self.count):016x}"  # 32 hex digits, like a uuid


_ids = _Ids()


class RequestId:
    """Sets `referrals.logs.request_id` for the request and sends it as X-Request-ID.

    The context variable is not reset on the way out: each ASGI request runs in a
    task of its own, with its own copy of the context, so the id cannot leak into
    another request, and what is logged after this middleware returns (an unhandled
    error's 500, the server's access line) still carries it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for name, value in scope["headers"]:
            if name == HEADER:
                rid = value.decode("latin-1")
                break
        if not _SANE.fullmatch(rid):
            rid = _ids.new()
        request_id.set(rid)
        header = (HEADER, rid.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
