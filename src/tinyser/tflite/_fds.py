"""What the LiteRT, TFLite Micro and converter wrappers share: keeping C/C++
chatter off stdout and stderr, and the last line of a message."""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator


@contextlib.contextmanager
def _quiet_fds(capture: list | None = None) -> Iterator[None]:
    """Silence C/C++ writes to stdout and stderr (fd 1 and 2), optionally capturing stderr text."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as null:
        try:
            os.dup2(null.fileno(), 1)
            os.dup2(err.fileno(), 2)
            with contextlib.redirect_stdout(open(os.devnull, "w")) as quiet:
                try:
                    yield
                finally:
                    quiet.close()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if capture is not None:
                err.seek(0)
                capture.append(err.read().decode("utf-8", "replace"))


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


