"""The ASGI application: ``GET /`` (the page), ``GET /health`` and ``POST /segment``.

Every failure is a JSON ``{"error": "<one line>"}`` with a 4xx status (503 with
``Retry-After`` when the queue is full or the server is stopping; 500 only for the
unexpected), never a traceback; the server goes on serving. Each request is logged
in one line (method, path, status, seconds); a client that leaves early is logged at
debug level only, and its request never reaches the model if it has not yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from importlib import resources

from faseg_cli.files.images import MAX_PIXELS, megapixels
from faseg_cli.serve.access import Access
from faseg_cli.serve.batcher import Batcher, Busy, Refused
from faseg_cli.serve.forms import ClientGone, RequestError, parse_request, read_form
from faseg_cli.serve.service import release_memory, request_error

log = logging.getLogger("faseg")


@dataclass(frozen=True)
class Limits:
    """What one server accepts, and for how long it waits (the ``faseg serve`` options)."""

    max_upload_bytes: int = 20 * 2**20
    max_pixels: int | None = MAX_PIXELS
    """None: Pillow's decompression-bomb guard only."""
    max_batch: int = 4
    max_wait: float = 0.02
    max_queue: int | None = 16
    """Requests waiting for the model at most (None: no limit); past it, 503."""
    deadline: float | None = 120.0
    """Seconds from arrival to answer (None: none); past it, 503."""
    read_timeout: float | None = 30.0
    """Seconds for the upload to arrive (None: none); past it, 408."""
    bound_host: str = "127.0.0.1"
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)


class DeadlinePassed(Exception):
    """No answer within the deadline; ``computing``: the request had reached the model (it was too slow, not
    waiting behind others)."""

    def __init__(self, computing: bool) -> None:
        super().__init__("deadline passed")
        self.computing = computing


def create_app(service, limits: Limits | None = None, **overrides):
    """The Starlette app serving ``service`` (a ``SegmentService``) within ``limits`` (or the defaults
    with ``overrides``, e.g. ``max_batch=3``); requests are batched by a ``Batcher``."""
    from dataclasses import replace

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    limits = replace(limits or Limits(), **overrides)
    access = Access(limits.bound_host, limits.allowed_origins)
    page = resources.files("faseg_cli.serve").joinpath("page.html").read_text("utf-8")
    batcher = Batcher(service.run, max_batch=limits.max_batch, max_wait=limits.max_wait, max_queue=limits.max_queue)

    def failure(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    async def index(request):
        return HTMLResponse(page)

    async def health(request):
        stats = batcher.stats
        counts = {
            "requests": stats.requests,
            "batches": stats.batches,
            "largest_batch": stats.largest,
            "queued": batcher.queued,
            "dropped": stats.dropped,
            "busy": stats.busy,
        }
        limit = {
            "max_batch": limits.max_batch,
            "max_queue": limits.max_queue,
            "max_upload_mb": limits.max_upload_bytes / 2**20,
            "max_megapixels": None if limits.max_pixels is None else limits.max_pixels / 1e6,
        }
        return JSONResponse({"status": "ok", **service.describe(), **counts, **limit})

    async def segment(request):
        arrived = asyncio.get_running_loop().time()
        try:
            batcher.admit()
            fields = await read_form(request, limits.max_upload_bytes, limits.read_timeout)
            job = await run_in_threadpool(parse_request, fields, service, limits.max_pixels)
            outcome = await answer_of(request, job, arrived)
            if isinstance(outcome, BaseException):
                raise outcome
            return JSONResponse(await run_in_threadpool(service.payload, job, outcome))
        except RequestError as exc:
            return failure(exc.status, exc.message)
        except ClientGone:
            log.debug("POST /segment: the client closed the connection before its answer")
            return failure(499, "client closed the connection")
        except Busy as exc:
            message = f"the server is busy: {limits.max_queue} requests are waiting (--max-queue); try again later"
            return failure(503, message, {"Retry-After": str(exc.retry_after)})
        except Refused:
            return failure(503, "the server is shutting down", {"Retry-After": "10"})
        except DeadlinePassed as exc:
            late = f"no answer within {limits.deadline:g} s (--deadline)"
            if exc.computing:  # a retry would take as long: no Retry-After
                log.warning("POST /segment: %s while the model computed it", late)
                return failure(503, f"{late}: segmenting it took longer; send a smaller image or raise --deadline")
            return failure(
                503, f"{late}: the server is busy; try again later", {"Retry-After": str(batcher.retry_after())}
            )
        except Exception as exc:  # noqa: BLE001 - one line for the client, the server goes on
            status, message = request_error(exc)
            if status >= 500:
                log.error("POST /segment: %s", message)
            return failure(status, message)

    async def answer_of(request, job, arrived: float):
        """The job's outcome from the batcher; dropped from the queue when the client leaves
        (``ClientGone``) or the deadline passes (``DeadlinePassed``) before it is computed."""
        loop = asyncio.get_running_loop()
        future = batcher.future(job)
        gone = asyncio.ensure_future(_disconnected(request.receive))
        timeout = None if limits.deadline is None else max(0.0, arrived + limits.deadline - loop.time())
        try:
            done, _ = await asyncio.wait({future, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if future.done():
            return future.result()
        computing = batcher.computing(future)
        future.cancel()
        raise ClientGone if gone in done else DeadlinePassed(computing)

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
    app.state.limits = limits
    return Guarded(app, access)


async def _disconnected(receive) -> None:
    """Returns when the client has closed the connection (the body has been read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class Guarded:
    """The app behind the Host and Origin checks (403 JSON), logging one line per request."""

    def __init__(self, app, access: Access) -> None:
        self.app = app
        self.access = access
        self.state = app.state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from starlette.datastructures import Headers
        from starlette.responses import JSONResponse

        began = time.perf_counter()
        status = 0

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        headers = Headers(scope=scope)
        host = headers.get("host")
        problem = self.access.host_problem(host)
        if problem is None and scope["method"] == "POST":
            problem = self.access.origin_problem(headers.get("origin"), host or "", scope.get("scheme", "http"))
        try:
            if problem is not None:
                await JSONResponse({"error": problem}, status_code=403)(scope, receive, sending)
            else:
                await self.app(scope, receive, sending)
        finally:
            if scope["method"] == "POST":
                release_memory()  # here, once the request's own objects (upload, image, result) are gone
            level = logging.DEBUG if status in (0, 499) else logging.INFO
            log.log(
                level, "%s %s %s %.2f s", scope["method"], scope["path"], status or "-", time.perf_counter() - began
            )


def describe_limits(limits: Limits) -> str:
    """One line of what the server accepts, for its start-up message."""
    pixels = "no pixel limit" if limits.max_pixels is None else f"images up to {megapixels(limits.max_pixels)}"
    queue = "no queue limit" if limits.max_queue is None else f"at most {limits.max_queue} waiting"
    return f"uploads up to {limits.max_upload_bytes / 2**20:g} MB, {pixels}, {queue}"
