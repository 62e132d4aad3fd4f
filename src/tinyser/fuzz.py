"""Seeded mutations of a file's bytes, for robustness tests: every damaged copy
of a WAV or a model must end in a result or a one-line error, never a
traceback, a hang or a crash (``tests/test_reliability.py``,
``benchmarks/fuzz.py``).

>>> [len(m) > 0 for _, m in mutations(b"RIFF" + bytes(100), 3, seed=0)]
[True, True, True]
"""
from __future__ import annotations

import random
import struct
from typing import Iterator

#: Offsets and formats of a canonical WAV header's fields, mutated on purpose
_WAV_FIELDS = {"riff_size": (4, "<I"), "fmt_tag": (20, "<H"), "channels": (22, "<H"), "rate": (24, "<I"),
               "byte_rate": (28, "<I"), "block_align": (32, "<H"), "bits": (34, "<H"), "data_size": (40, "<I")}
_EDGES = [0, 1, 2, 3, 7, 8, 255, 256, 513, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]


def mutations(data: bytes, n: int, seed: int = 0, wav_header: bool | None = None) -> Iterator[tuple[str, bytes]]:
    """``n`` damaged copies of ``data`` as ``(kind, bytes)``: bit flips, overwritten,
    zeroed, inserted, deleted and duplicated runs, truncations and (for a WAV)
    header fields set to edge values. The same seed gives the same copies."""
    rng = random.Random(seed)
    wav = data[:4] == b"RIFF" if wav_header is None else wav_header
    kinds = ["bitflip", "overwrite", "zero", "insert", "delete", "duplicate", "truncate"]
    kinds += ["header"] * 3 if wav else []
    for i in range(n):
        kind = kinds[i % len(kinds)] if i < len(kinds) else rng.choice(kinds)
        b = bytearray(data)
        pos = rng.randrange(len(b))
        run = rng.choice([1, 2, 4, 16, 256, 4096])
        if kind == "bitflip":
            for _ in range(rng.choice([1, 2, 8, 64])):
                j = rng.randrange(len(b))
                b[j] ^= 1 << rng.randrange(8)
        elif kind == "overwrite":
            b[pos:pos + run] = bytes(rng.getrandbits(8) for _ in range(min(run, len(b) - pos)))
        elif kind == "zero":
            b[pos:pos + run] = bytes(min(run, len(b) - pos))
        elif kind == "insert":
            b[pos:pos] = bytes(rng.getrandbits(8) for _ in range(run))
        elif kind == "delete":
            del b[pos:pos + run]
        elif kind == "duplicate":
            b[pos:pos] = b[pos:pos + run]
        elif kind == "truncate":
            del b[rng.choice([rng.randrange(64), pos]):]
        else:  # a WAV header field set to an edge or random value
            name = rng.choice(list(_WAV_FIELDS))
            off, fmt = _WAV_FIELDS[name]
            limit = 1 << (8 * struct.calcsize(fmt))
            value = rng.choice(_EDGES + [rng.randrange(limit)]) % limit
            struct.pack_into(fmt, b, off, value)
            kind = f"header:{name}={value}"
        if bytes(b) == data or not b:  # e.g. zeros written over zeros: damage it for real
            b = bytearray(data)
            b[pos] ^= 0xFF
        yield kind, bytes(b)
