"""Who may use the server: the Host and Origin checks that keep it local by default.

A web page the user visits can make the browser send requests to ``127.0.0.1``, and a
name it controls can be re-pointed at ``127.0.0.1`` (DNS rebinding). So a request is
answered only when its ``Host`` is a loopback name or address, or the address the
server is bound to (bound to all addresses, ``0.0.0.0`` or ``::``: any IP address); a
rebinding page's Host is its own name, and is refused. A ``POST`` carrying an
``Origin`` is answered only when that origin is the server's own (the same scheme,
host and port as the Host it was sent to) or one given with ``--allow-origin``.
Requests without an Origin (curl, scripts) are not cross-origin and pass.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost",)


def split_host(value: str) -> str:
    """The host name of a ``Host`` header value (``[::1]:7860`` -> ``::1``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def ip(name: str):
    """The IP address ``name`` spells, or None."""
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def normal_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case, without a default port; None when ``origin`` is not one."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class Access:
    """The checks of one server bound to ``bound_host``, allowing the origins in ``allowed_origins``."""

    def __init__(self, bound_host: str, allowed_origins: Iterable[str] = ()) -> None:
        self.bound_host = split_host(bound_host)
        bound = ip(self.bound_host)
        self.any_address = bound is not None and bound.is_unspecified
        self.allowed = set()
        for origin in allowed_origins:
            normal = normal_origin(origin)
            if normal is None:
                raise ValueError(f"{origin!r} is not an origin: expected scheme://host[:port], e.g. http://example.org")
            self.allowed.add(normal)

    def host_problem(self, host_header: str | None) -> str | None:
        """Why a request with this ``Host`` is refused, or None."""
        if not host_header:
            return "no Host header"
        name = split_host(host_header)
        address = ip(name)
        if name in LOOPBACK_NAMES or name.endswith(".localhost") or name == self.bound_host:
            return None
        if address is not None and (address.is_loopback or self.any_address):
            return None
        return f"Host {name!r} is not this server's address ({self.bound_host} or a loopback name)"

    def origin_problem(self, origin: str | None, host_header: str, scheme: str = "http") -> str | None:
        """Why a POST from this ``Origin`` (sent to ``host_header``) is refused, or None."""
        if origin is None:
            return None
        normal = normal_origin(origin)
        own = normal_origin(f"{scheme}://{host_header.strip()}")
        if normal is not None and (normal == own or normal in self.allowed):
            return None
        return f"cross-origin request from {origin.strip()!r} refused (faseg serve --allow-origin allows one)"
