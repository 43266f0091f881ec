"""The busiest request straight to its endpoint, past the router and FastAPI's request machinery.

An inspector's report goes through eleven layers of ASGI callables before its endpoint runs (the exception
and exit-stack middleware, the router trying each route's pattern, the included router, the route's
request-response wrapper, dependency solving for the one ``Request`` parameter) and back: ≈ 0.35 M of the
3.7 M instructions a served report took (valgrind), a tenth of the server's work on the busiest route.
The endpoint already reads its own form, key and token, so nothing of that is needed for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send


class Shortcut:
    """ASGI middleware (``app.add_middleware(Shortcut, method=…, path=…, endpoint=…)``): a request for ``method``
    and exactly ``path`` goes straight to ``endpoint`` (``async def (Request) -> Response``), whose errors the
    app's exception handlers answer as they would behind the router (an error without one goes on up, to the
    server-error middleware's 500). Anything else goes on down the stack, the endpoint's own route included,
    which stays registered for the API's description and for any other way of reaching it."""

    def __init__(self, app: ASGIApp, *, method: str, path: str,
                 endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self.app, self.method, self.path, self.endpoint = app, method, path, endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != self.method:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await self.endpoint(request)
        except Exception as error:
            handler = next((found for kind in type(error).__mro__
                            if (found := scope["app"].exception_handlers.get(kind)) is not None), None)
            if handler is None:
                raise
            response = await (handler(request, error) if inspect.iscoroutinefunction(handler)
                              else run_in_threadpool(handler, request, error))
        await response(scope, receive, send)
