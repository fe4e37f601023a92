"""Run the app with uvicorn on a socket bound beforehand, and stop it cleanly on a signal.

The port is bound before the model loads, so a busy port is one line (exit 2) at once.
On the first SIGINT or SIGTERM the server stops accepting, answers every queued request
503, gives the running batch ``grace`` seconds (then answers its requests 503 too) and
returns 130 or 143, the shell's codes for those signals; a second signal exits at
once, in one line.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sys

from faseg_cli.errors import UsageError

log = logging.getLogger("faseg")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``, or one ``UsageError`` line (busy port, unknown address)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: cannot use this address ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is already in use: choose another with --port") from None
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def exit_at_once(sig: int, frame=None) -> None:
    """A second SIGINT or SIGTERM while stopping: one line, the shell's code for the signal, nothing more."""
    sys.stderr.write(f"error: stopped at once by a second {signal.Signals(sig).name}\n")
    sys.stderr.flush()
    os._exit(128 + sig)


def run(app, sock: socket.socket, grace: float = 10.0) -> int:
    """Serve ``app`` (``create_app``'s) on ``sock`` until a signal; returns the exit code (0 if none)."""
    import uvicorn

    batcher = app.state.batcher

    class Server(uvicorn.Server):
        stopped_by: int | None = None

        def handle_exit(self, sig, frame) -> None:
            if self.stopped_by is not None:
                exit_at_once(sig, frame)
            self.stopped_by = sig
            self.should_exit = True
            loop = asyncio.get_running_loop()
            loop.call_soon_threadsafe(stopping, loop, signal.Signals(sig).name)

    def stopping(loop, name: str) -> None:
        refused = batcher.refuse()
        running = f", the running batch has {grace:g} s" if batcher.busy else ""
        log.warning("%s: stopping (%d queued requests answered 503%s)", name, refused, running)
        loop.call_later(grace, give_up)

    def give_up() -> None:
        if abandoned := batcher.abandon():
            log.warning("%d requests did not finish within %g s: answered 503", abandoned, grace)

    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=grace + 2, lifespan="on")
    server = Server(config)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
    if server.stopped_by is None:
        return 0
    for sig in (signal.SIGINT, signal.SIGTERM):  # uvicorn gave the signals back: a second one still exits at once
        signal.signal(sig, exit_at_once)
    code = 128 + server.stopped_by
    if batcher.busy:
        sys.stderr.flush()
        os._exit(code)
    return code
