"""Run the web app with uvicorn: ``tinyser serve``.

Binds 127.0.0.1 unless told otherwise (and warns when it is not: the API has
no authentication). WebSocket messages and the queue of unread ones are
capped, so a live stream holds a bounded amount of memory; on Ctrl-C or
SIGTERM uvicorn stops accepting, open streams are closed (code 1001) and
requests in flight finish.
"""
from __future__ import annotations

import ipaddress
from typing import Callable

from ..extras import need
from ..inference import Model
from .core import Limits

#: bytes in one WebSocket message, and messages queued unread per stream
WS_MAX_SIZE, WS_MAX_QUEUE = 4 * 2**20, 4


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(model: Model | str = "default", host: str = "127.0.0.1", port: int = 8000, limits: Limits = Limits(),
          warn: Callable[[str], None] | None = None, log_level: str = "info") -> None:
    """Serve the page and the API for ``model`` (a loaded model or a path, ``"default"``) on
    ``host:port`` until interrupted."""
    need("starlette", "tinyser serve")
    uvicorn = need("uvicorn", "tinyser serve")
    from .app import create_app

    app = create_app(model, limits)
    if not is_loopback(host) and warn is not None:
        warn(f"serving on {host}: other machines can reach it, and the API has no authentication")
    uvicorn.run(app, host=host, port=port, log_level=log_level, ws_max_size=WS_MAX_SIZE,
                ws_max_queue=WS_MAX_QUEUE, timeout_graceful_shutdown=5)
