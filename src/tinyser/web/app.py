"""The Starlette application of ``tinyser serve``: the page, the HTTP API and the live WebSocket.

The web stack is imported by :func:`create_app` (through :func:`tinyser.extras.need`),
so importing this module, and the rest of tinyser, never needs the ``[web]`` extra.

>>> app = create_app("default")          # doctest: +SKIP
>>> TestClient(app).get("/api/health").json()["status"]   # doctest: +SKIP
'ok'
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

from ..extras import need
from ..inference import Model, load_model
from .core import (
    Limits,
    LiveStream,
    WebError,
    check_content_type,
    check_params,
    model_card,
    parse_bool,
    parse_float,
    predict_upload,
)
from .openapi import openapi_schema

STATIC = Path(__file__).parent / "static"
#: room for a multipart body's boundaries and headers around a file of the largest size
MULTIPART_SLACK = 64 * 1024
#: WebSocket close codes
GOING_AWAY, POLICY, TRY_LATER = 1001, 1008, 1013


def create_app(model: Model | str = "default", limits: Limits = Limits(), workers: int = 2):
    """The application serving ``model`` (a :class:`~tinyser.inference.Model` or a path,
    ``"default"``: the shipped model) within ``limits``; ``workers``: uploads read, decoded and
    predicted at once (the others wait their turn, their bodies unread), so uploads hold at
    most ``workers`` times twice ``limits.max_bytes`` of memory."""
    need("starlette", "tinyser serve")
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles
    from starlette.websockets import WebSocket, WebSocketDisconnect

    m = model if isinstance(model, Model) else load_model(model)
    card = model_card(m)
    streams: set = set()
    state = {"closing": False}
    slots = asyncio.Semaphore(max(1, workers))

    def error(e: WebError) -> JSONResponse:
        return JSONResponse({"error": str(e)}, status_code=e.status)

    async def index(request: Request):
        return FileResponse(STATIC / "index.html")

    async def health(request: Request):
        return JSONResponse({"status": "ok", "model": card["name"], "streams": len(streams),
                             "max_streams": limits.max_streams})

    async def model_info(request: Request):
        return JSONResponse(card)

    async def openapi(request: Request):
        return JSONResponse(openapi_schema(limits))

    async def predict(request: Request):
        q = request.query_params
        try:
            window, hop = parse_float(q.get("window"), "window"), parse_float(q.get("hop"), "hop")
            allow_short = parse_bool(q.get("allow_short"))
            check_params(m, window, hop, allow_short)
            ctype = request.headers.get("content-type", "")
            multipart = ctype.split(";")[0].strip().lower() == "multipart/form-data"
            if not multipart:
                check_content_type(ctype)
            limit = limits.max_bytes + (MULTIPART_SLACK if multipart else 0)
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise WebError(413, f"upload of {int(declared):,} bytes; at most {limits.max_bytes:,} bytes")
            async with slots:  # bodies are read only when a slot is free: bounded memory however many post
                body = await _read(request, limit, limits.max_bytes)
                name = q.get("name")
                if multipart:
                    body, name = _multipart(ctype, body)
                result = await run_in_threadpool(predict_upload, m, body, name or "upload", limits,
                                                 window, hop, allow_short)
        except WebError as e:
            return error(e)
        return JSONResponse(result)

    async def stream(ws: WebSocket):
        await ws.accept()
        if state["closing"] or len(streams) >= limits.max_streams:
            why = ("the server is shutting down" if state["closing"] else
                   f"{len(streams)} live streams are open, at most {limits.max_streams}; try again later")
            await ws.send_json({"error": why})
            await ws.close(TRY_LATER)
            return
        streams.add(ws)
        try:
            await _live(ws)
        except WebSocketDisconnect:
            pass
        except WebError as e:
            with contextlib.suppress(Exception):
                await ws.send_json({"error": str(e)})
                await ws.close(POLICY)
        finally:
            streams.discard(ws)

    async def _live(ws: WebSocket):
        params = dict(ws.query_params)
        if "sample_rate" not in params:  # then the first message declares it: {"sample_rate": N, ...}
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(msg.get("code", 1000))
            try:
                first = json.loads(msg.get("text") or "")
                assert isinstance(first, dict)
            except (ValueError, AssertionError):
                raise WebError(422, 'the first message must be JSON: {"sample_rate": N} (16-bit PCM follows)') \
                    from None
            params.update(first)
        live = LiveStream(m, _int(params.get("sample_rate"), "sample_rate"),
                          _int(params.get("channels", 1), "channels"),
                          parse_float(_str(params.get("window")), "window"),
                          parse_float(_str(params.get("hop")), "hop"),
                          parse_bool(params.get("allow_short")), limits)
        await ws.send_json({"event": "ready", "sample_rate": live.sample_rate, "channels": live.channels,
                            "window": live.stream.window, "hop": live.stream.hop, "labels": m.labels})
        start = None
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("bytes") is not None:
                start = time.monotonic() if start is None else start
                for row in await run_in_threadpool(live.push, msg["bytes"]):
                    await ws.send_text(json.dumps(row))
                if limits.stream_lead is not None:  # faster than real time: stop reading for a while
                    ahead = live.seconds - (time.monotonic() - start) - limits.stream_lead
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            elif _is_end(msg.get("text")):
                for row in await run_in_threadpool(live.finish):
                    await ws.send_text(json.dumps(row))
                for w in live.warnings():
                    await ws.send_json({"event": "warning", "message": w})
                await ws.send_json({"event": "end", "seconds": round(live.seconds, 4)})
                await ws.close(1000)
                return
            else:
                raise WebError(422, 'send 16-bit PCM as binary messages, then "end" as text')

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        state["closing"] = True  # graceful shutdown: every open stream is told and closed
        for ws in list(streams):
            with contextlib.suppress(Exception):
                await ws.send_json({"event": "shutdown"})
                await ws.close(GOING_AWAY)

    routes = [
        Route("/", index),
        Route("/api/health", health),
        Route("/api/model", model_info),
        Route("/api/openapi.json", openapi),
        Route("/api/predict", predict, methods=["POST"]),
        WebSocketRoute("/api/stream", stream),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.model, app.state.limits, app.state.streams = m, limits, streams
    return app


def _int(value, name: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise WebError(422, f"{name} must be a whole number, not {value!r}")


def _is_end(text: str | None) -> bool:
    """The client's end of audio: the text "end" or {"end": true}."""
    if text is None:
        return False
    if text.strip() == "end":
        return True
    try:
        msg = json.loads(text)
    except ValueError:
        return False
    return msg == "end" or (isinstance(msg, dict) and msg.get("end") is True)


def _str(value) -> str | None:
    return None if value is None else str(value)


async def _read(request, limit: int, max_bytes: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes: never held whole beyond it."""
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            raise WebError(413, f"upload over {max_bytes:,} bytes; at most {max_bytes:,} bytes per upload")
        chunks.append(chunk)
    return b"".join(chunks)


def _multipart(content_type: str, body: bytes) -> tuple[bytes, str | None]:
    """The first file of a multipart/form-data body, parsed in memory: (bytes, file name)."""
    need("python_multipart", "multipart uploads")
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise WebError(422, "multipart/form-data without a boundary")
    parts: list[dict] = []
    field, value = bytearray(), bytearray()

    def begin():
        parts.append({"headers": {}, "data": bytearray()})

    def header_end():
        parts[-1]["headers"][bytes(field).lower()] = bytes(value)
        field.clear()
        value.clear()

    callbacks = {"on_part_begin": begin,
                 "on_part_data": lambda d, s, e: parts[-1]["data"].extend(d[s:e]),
                 "on_header_field": lambda d, s, e: field.extend(d[s:e]),
                 "on_header_value": lambda d, s, e: value.extend(d[s:e]),
                 "on_header_end": header_end}
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except Exception as e:  # python_multipart's parse errors
        raise WebError(422, f"damaged multipart/form-data body ({str(e).strip() or type(e).__name__})") from None
    for part in parts:
        _, disposition = parse_options_header(part["headers"].get(b"content-disposition", b""))
        if b"filename" in disposition or disposition.get(b"name") in (b"file", b"audio"):
            check_content_type(part["headers"].get(b"content-type", b"").decode("latin-1"))
            name = disposition.get(b"filename", b"").decode("utf-8", "replace") or None
            return bytes(part["data"]), name
    raise WebError(422, "multipart/form-data holds no file: send the audio as a part named 'file'")
