"""Load figure of `tinyser serve`: uploads per second and live streams one machine sustains.

    python benchmarks/web_load.py [--seconds 10] [--requests 60] [--max-streams 128]

Starts `tinyser serve` (one uvicorn process, the default model) on 127.0.0.1 and, from this
process, drives it with a bounded load generator:

* `POST /api/predict` of a 3 s speech-like WAV (16 kHz, PCM_16): a fixed number of requests
  at 1, 2 and 4 in flight; requests per second and latency percentiles.
* `/api/stream`: N clients at once, each sending the same speech-like audio as 16-bit PCM at
  16 kHz in 0.1 s chunks paced at real time for ``--seconds``. A row is late by the time
  between the moment its window's last sample was sent and the moment the row arrived; N
  streams are sustained when every stream got all its rows and the 95th percentile of
  lateness stays under one hop (1 s). N doubles from 1 until it fails or reaches ``--max-streams``.

Writes docs/web_load.json and the web_load section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402
from speechlike import speechlike  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, max_streams: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tinyser", "serve", "--port", str(port), "--max-streams", str(max_streams)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("tinyser serve did not start")


async def predict_load(port: int, wav: bytes, requests: int, concurrency: int) -> dict:
    import httpx

    latencies: list[float] = []
    todo = iter(range(requests))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        async def worker():
            for _ in todo:
                t = time.perf_counter()
                r = await client.post("/api/predict?name=clip.wav", content=wav,
                                      headers={"content-type": "audio/wav"})
                if r.status_code != 200:
                    raise SystemExit(f"POST /api/predict: {r.status_code} {r.text}")
                latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies)
    return {"concurrency": concurrency, "requests": requests, "wall_s": round(wall, 3),
            "requests_per_s": round(requests / wall, 2), "p50_ms": round(1000 * float(np.percentile(lat, 50)), 1),
            "p95_ms": round(1000 * float(np.percentile(lat, 95)), 1)}


async def one_stream(port: int, pcm: bytes, seconds: float, chunk_s: float = 0.1) -> dict:
    import websockets

    sr, step = 16000, int(16000 * chunk_s) * 2
    sent_at: list[tuple[float, float]] = []  # (audio seconds sent so far, wall time)
    late: list[float] = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/api/stream?sample_rate={sr}", max_size=2**20) as ws:
        ready = json.loads(await ws.recv())
        if ready.get("event") != "ready":
            return {"error": ready.get("error", str(ready)), "rows": 0, "late": []}

        async def receive():
            rows = 0
            async for msg in ws:
                m = json.loads(msg)
                if "start" in m:
                    rows += 1
                    now = time.perf_counter()
                    sent = next((t for a, t in sent_at if a >= m["end"] - 1e-6), None)
                    if sent is not None:
                        late.append(now - sent)
                elif m.get("event") == "end" or "error" in m:
                    return rows
            return rows

        rx = asyncio.create_task(receive())
        t0 = time.perf_counter()
        n = int(seconds * sr) * 2
        for i in range(0, n, step):
            await asyncio.sleep(max(0.0, t0 + i / 2 / sr - time.perf_counter()))
            part = pcm[i % len(pcm):i % len(pcm) + step]
            await ws.send(part)
            sent_at.append(((i + len(part)) / 2 / sr, time.perf_counter()))
        await ws.send("end")
        rows = await rx
    return {"rows": rows, "late": late}


async def stream_load(port: int, pcm: bytes, n: int, seconds: float) -> dict:
    results = await asyncio.gather(*(one_stream(port, pcm, seconds) for _ in range(n)), return_exceptions=True)
    errors = [str(r) if isinstance(r, BaseException) else r["error"] for r in results
              if isinstance(r, BaseException) or "error" in r]
    ok = [r for r in results if not isinstance(r, BaseException) and "error" not in r]
    expected = int(seconds) - 1  # windows of 2 s every 1 s over `seconds` s of audio
    late = np.array([x for r in ok for x in r["late"]]) if ok else np.array([np.inf])
    p95 = float(np.percentile(late, 95)) if late.size else float("inf")
    complete = all(r["rows"] >= expected for r in ok)
    return {"streams": n, "errors": len(errors), "complete": complete, "rows": sum(r["rows"] for r in ok),
            "late_p50_ms": round(1000 * float(np.percentile(late, 50)), 1) if late.size else None,
            "late_p95_ms": round(1000 * p95, 1), "late_max_ms": round(1000 * float(late.max()), 1),
            "sustained": not errors and complete and p95 < 1.0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="audio per live stream (real time)")
    ap.add_argument("--requests", type=int, default=60, help="uploads per concurrency level")
    ap.add_argument("--max-streams", type=int, default=128)
    args = ap.parse_args()
    buf = io.BytesIO()
    sf.write(buf, speechlike(3.0), 16000, format="WAV", subtype="PCM_16")
    wav = buf.getvalue()
    pcm = (speechlike(args.seconds + 1) * 32767).astype("<i2").tobytes()
    load = os.getloadavg()[0]  # before this benchmark adds its own
    port = free_port()
    proc = start_server(port, args.max_streams)
    try:
        predict = [asyncio.run(predict_load(port, wav, args.requests, c)) for c in (1, 2, 4)]
        for p in predict:
            print("predict", p, flush=True)
        streams, n = [], 1
        while n <= args.max_streams:
            s = asyncio.run(stream_load(port, pcm, n, args.seconds))
            print("streams", s, flush=True)
            streams.append(s)
            if not s["sustained"]:
                break
            n *= 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    best = max((s["streams"] for s in streams if s["sustained"]), default=0)
    limit_hit = streams[-1]["sustained"]
    top = max(predict, key=lambda p: p["requests_per_s"])
    res = {"machine": _report.machine(), "load_average_before": round(load, 2), "clip_seconds": 3.0,
           "predict": predict, "streams": streams, "sustained_streams": best,
           "sustained_is_lower_bound": limit_hit, "stream_seconds": args.seconds}
    cmd = "python benchmarks/web_load.py" + (f" --seconds {args.seconds:g}" if args.seconds != 10 else "")
    md = [
        "## Web app load (`benchmarks/web_load.py`)", "",
        f"Reproduce: `{cmd}` on {_report.machine()}. One `tinyser serve` process (uvicorn, the default model) "
        "on 127.0.0.1, driven from a second process on the same machine (the load generator shares the two "
        f"cores). 1-minute load average when it started: {load:.2f} (a training job was running at "
        "higher priority, so these are floors).", "",
        f"**`POST /api/predict`, 3 s clips: {top['requests_per_s']:.1f} requests/s** "
        f"(best of 1, 2 and 4 in flight; {args.requests} requests each).", "",
        "| in flight | requests/s | p50 | p95 |", "|---:|---:|---:|---:|",
        *(f"| {p['concurrency']} | {p['requests_per_s']:.1f} | {p['p50_ms']:.0f} ms | {p['p95_ms']:.0f} ms |"
          for p in predict), "",
        f"**Live streams sustained in real time: {best}{'+' if limit_hit else ''}** "
        f"(the server run with `--max-streams {args.max_streams}`, its default being 4; "
        f"{args.seconds:g} s of 16 kHz PCM per stream in 0.1 s chunks, paced at real time; sustained: every "
        "row arrived and the 95th percentile of lateness, from the last sample of a window sent to its row "
        "received, stays under one hop, 1 s" + ("; the doubling stopped at `--max-streams`" if limit_hit else "")
        + ").", "",
        "| streams | rows | late p50 | late p95 | late max | sustained |", "|---:|---:|---:|---:|---:|:---:|",
        *(f"| {s['streams']} | {s['rows']} | {s['late_p50_ms']} ms | {s['late_p95_ms']} ms | {s['late_max_ms']} ms "
          f"| {'yes' if s['sustained'] else 'no'} |" for s in streams),
    ]
    _report.write("web_load", res, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
