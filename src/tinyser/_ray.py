"""Connecting to Ray (the ``[scale]`` extra), shared by ``tinyser search`` and archive-scale ``predict``."""
from __future__ import annotations

import logging
import os

from .errors import TinyserError
from .extras import need


def ray_init(address: str, workers: int | None, what: str = "--address (Ray)"):
    """Ray, connected to ``address`` (``"local"``: started here with ``workers`` CPUs, default all),
    and whether this call started it (then the caller shuts it down). A cluster that cannot be
    reached is one line naming the address."""
    ray = need("ray", what)
    if ray.is_initialized():
        return ray, False
    kw = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        if address == "local":
            ray.init(address="local", num_cpus=workers or os.cpu_count(), **kw)
        else:
            ray.init(address=address, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TinyserError(f"--address {address}: cannot connect to a Ray cluster ({msg})") from None
    return ray, True
