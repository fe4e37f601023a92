"""The ASGI application: ``GET /`` (the page), ``GET /health`` and ``POST /segment``.

Every failure is a JSON ``{"error": "<one line>"}`` with a 4xx status (5xx only for
the unexpected), never a traceback; the server goes on serving.
"""

from __future__ import annotations

import contextlib
import logging
from importlib import resources

from faseg_cli.serve.batcher import Batcher
from faseg_cli.serve.forms import RequestError, parse_request, read_form
from faseg_cli.serve.service import request_error

log = logging.getLogger("faseg")


def create_app(service, *, max_upload_bytes: int = 20 * 2**20, max_batch: int = 4, max_wait: float = 0.02):
    """The Starlette app serving ``service`` (a ``SegmentService``); requests are batched by a ``Batcher``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    page = resources.files("faseg_cli.serve").joinpath("page.html").read_text("utf-8")
    batcher = Batcher(service.run, max_batch=max_batch, max_wait=max_wait)

    def failure(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def index(request):
        return HTMLResponse(page)

    async def health(request):
        stats = batcher.stats
        counts = {"requests": stats.requests, "batches": stats.batches, "largest_batch": stats.largest}
        return JSONResponse({"status": "ok", **service.describe(), **counts, "max_batch": max_batch})

    async def segment(request):
        try:
            fields = await read_form(request, max_upload_bytes)
            job = await run_in_threadpool(parse_request, fields, service)
            outcome = await batcher.submit(job)
            return JSONResponse(await run_in_threadpool(service.payload, job, outcome))
        except RequestError as exc:
            return failure(exc.status, exc.message)
        except Exception as exc:  # noqa: BLE001 - one line for the client, the server goes on
            status, message = request_error(exc)
            if status >= 500:
                log.error("POST /segment: %s", message)
            return failure(status, message)

    async def http_error(request, exc):
        return failure(exc.status_code, exc.detail)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await batcher.close()

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/segment", segment, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    app.state.batcher = batcher
    return app
