"""On-disk cache of per-file features, keyed by the audio's bytes and the
exact feature configuration. Entries are written atomically (temporary file,
then rename), so an interrupted run never leaves a corrupt entry and a re-run
only computes what is missing.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import TinyserError

CACHE_ENV = "TINYSER_CACHE"


def default_cache_dir() -> Path:
    """``$TINYSER_CACHE`` or ``~/.cache/tinyser``.

    >>> default_cache_dir().name in ("tinyser", os.environ.get(CACHE_ENV, "tinyser").rsplit("/", 1)[-1])
    True
    """
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "tinyser"


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """BLAKE2b digest of a file's bytes (the cache key's audio half).

    >>> len(file_digest(__file__))
    32
    """
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_digest(config: dict) -> str:
    """Digest of a JSON-able config (the cache key's feature half).

    >>> config_digest({"a": 1}) == config_digest({"a": 1})
    True
    """
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(blob, digest_size=12).hexdigest()


def output_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces, or TinyserError. Only regular files
    are ever replaced: a folder, device, FIFO or socket is refused. A symbolic
    link is written through: the file it points to gets the new content and
    the link stays a link (a link to nothing is refused).

    >>> output_target("/dev/null")
    Traceback (most recent call last):
    tinyser.errors.TinyserError: /dev/null: is a device; tinyser only writes regular files
    """
    path = Path(path)
    if path.is_symlink():
        real = Path(os.path.realpath(path))
        if not real.exists():
            raise TinyserError(f"{path}: is a link to {real}, which does not exist; remove the link or give "
                               "another path")
        kind = _kind(real)
        if kind:
            raise TinyserError(f"{path}: is a link to {real}, {kind}; tinyser only writes regular files")
        return real
    kind = _kind(path) if path.exists() else None
    if kind:
        raise TinyserError(f"{path}: is {kind}; tinyser only writes regular files")
    return path


def _kind(path: Path) -> str | None:
    """What a non-regular file is ("a folder", "a device", ...); None for a regular file."""
    import stat

    mode = path.stat().st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def check_output(path: str | os.PathLike | None, force: bool) -> None:
    """Refuse, before any work, an output that exists (unless ``force``) or that
    is not a regular file (even with ``force``): see :func:`output_target`.
    The one overwrite guard of every command that writes files."""
    if path is None:
        return
    path = Path(path)
    target = output_target(path)
    if (path.exists() or path.is_symlink()) and not force:
        raise TinyserError(f"{path}: already exists; pass --force to overwrite")
    del target


def check_outputs(paths, force: bool) -> None:
    """:func:`check_output` for each of ``paths``, all before any is written."""
    for path in paths:
        check_output(path, force)


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename
    it over ``path``: readers see the old file or the new one, never half of one.
    Only regular files are replaced (see :func:`output_target`)."""
    path = output_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise TinyserError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):  # e.g. path is a folder
            raise TinyserError(f"{path}: cannot write ({e.strerror or e})") from None
        raise


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once, at import, before any threads start
    os.umask(mask)
    return mask


_UMASK = _read_umask()


class DigestIndex:
    """File digests remembered by (path, size, modification time), so unchanged
    files are not read again to find their cache key.

    >>> DigestIndex("/tmp/tinyser-doc-cache").digest(__file__) == file_digest(__file__)
    True
    """

    def __init__(self, root: str | os.PathLike | None):
        self.path = Path(root or default_cache_dir()) / "digests.json"
        try:
            self.entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    def digest(self, path: str | os.PathLike) -> str:
        st = os.stat(path)
        key, sig = os.path.abspath(path), [st.st_size, st.st_mtime_ns]
        hit = self.entries.get(key)
        if hit and hit[:2] == sig:
            return hit[2]
        d = file_digest(path)
        self.entries[key], self.changed = [*sig, d], True
        return d

    def save(self) -> None:
        if self.changed:
            atomic_write(self.path, lambda f: f.write(json.dumps(self.entries).encode()))
            self.changed = False


class FeatureCache:
    """Arrays stored per (config, audio content).

    >>> cache = FeatureCache("/tmp/tinyser-doc-cache", {"frontend": "mfcc"})
    >>> cache.put("abc", np.zeros(3, np.float32)); cache.get("abc").shape
    (3,)
    """

    def __init__(self, root: str | os.PathLike | None, config: dict):
        self.dir = Path(root or default_cache_dir()) / "features" / config_digest(config)
        self.config = config
        self.digests = DigestIndex(root)

    def key(self, path: str | os.PathLike) -> str:
        """The cache key of an audio file: the digest of its bytes."""
        return self.digests.digest(path)

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        try:
            return np.load(self._path(key), allow_pickle=False)
        except (OSError, ValueError, EOFError):  # missing, or damaged by something outside tinyser
            return None

    def put(self, key: str, value: np.ndarray) -> None:
        if not (self.dir / "config.json").exists():
            atomic_write(self.dir / "config.json", lambda f: f.write(json.dumps(self.config, indent=1).encode()))
        atomic_write(self._path(key), lambda f: np.save(f, value, allow_pickle=False))

    def get_set(self, key: str) -> list | None:
        """Per-file results (array, or the reason the file failed) of a whole file set."""
        try:
            with np.load(self.dir / "sets" / f"{key}.npz", allow_pickle=False) as z:
                features, counts = z["features"], z["counts"]
                reasons = json.loads(str(z["reasons"]))
        except (OSError, ValueError, KeyError, EOFError):
            return None
        ends = np.cumsum(np.maximum(counts, 0))
        return [reasons[str(i)] if n < 0 else features[end - n:end]
                for i, (n, end) in enumerate(zip(counts.tolist(), ends.tolist()))]

    def put_set(self, key: str, per_file: list) -> None:
        arrays = [x for x in per_file if not isinstance(x, str)]
        if not arrays:
            return
        counts = np.array([-1 if isinstance(x, str) else len(x) for x in per_file], np.int64)
        reasons = {str(i): x for i, x in enumerate(per_file) if isinstance(x, str)}
        blob = {"features": np.concatenate(arrays), "counts": counts, "reasons": np.array(json.dumps(reasons))}
        atomic_write(self.dir / "sets" / f"{key}.npz", lambda f: np.savez(f, **blob))
