"""The OpenAPI description of ``tinyser serve``'s HTTP API (served at ``/api/openapi.json``).

>>> sorted(openapi_schema()["paths"])
['/api/health', '/api/model', '/api/predict', '/api/stream']
"""
from __future__ import annotations

from .. import __version__


def openapi_schema(limits=None) -> dict:
    """The OpenAPI 3.1 document; ``limits`` (:class:`~tinyser.web.core.Limits`) are stated in it."""
    from .core import Limits

    limits = limits or Limits()
    err = {"description": "one line saying why", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}}
    seconds = {"type": "number", "minimum": 0}
    window_params = [
        {"name": "window", "in": "query", "schema": seconds,
         "description": "Window in seconds (default: the model's input length)."},
        {"name": "hop", "in": "query", "schema": seconds, "description": "Hop in seconds (default: half a window)."},
        {"name": "allow_short", "in": "query", "schema": {"type": "boolean"},
         "description": "Accept a window shorter than the model's input (zero-padded)."},
    ]
    row = {"type": "object", "description": "One window: as `tinyser listen --log` writes it.",
           "properties": {"time": {"type": "number"}, "start": seconds, "end": seconds,
                          "label": {"type": "string"}, "confidence": {"type": "number"},
                          "voiced": {"type": "boolean"},
                          "probabilities": {"type": "object", "additionalProperties": {"type": "number"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "tinyser", "version": __version__,
                 "description": "Speech emotion recognition: the same results as `tinyser predict --json` "
                                "and `tinyser listen --log`."},
        "paths": {
            "/api/health": {"get": {"summary": "Is the server up", "responses": {"200": {
                "description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/api/model": {"get": {"summary": "The model card: labels, window, size, training summary",
                                   "responses": {"200": {"description": "the card", "content": {
                                       "application/json": {"schema": {"type": "object"}}}}}}},
            "/api/predict": {"post": {
                "summary": "Predict one audio file (any format libsndfile reads): `tinyser predict --json`",
                "parameters": [{"name": "name", "in": "query", "schema": {"type": "string"},
                                "description": "The file's name in the result (multipart: the part's filename)."},
                               *window_params],
                "requestBody": {"required": True, "content": {
                    "audio/*": {"schema": {"type": "string", "format": "binary"}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {"schema": {"type": "object", "properties": {
                        "file": {"type": "string", "format": "binary"}}}}}},
                "responses": {
                    "200": {"description": "`{model, labels, results: [one file], failed: []}`",
                            "content": {"application/json": {"schema": {"type": "object"}}}},
                    "413": {**err, "description": f"over {limits.max_bytes:,} bytes or {limits.max_seconds:g} s"},
                    "415": {**err, "description": "not audio (or a Content-Type that is not audio)"},
                    "422": {**err, "description": "empty, damaged, silent or too short audio; bad parameters"},
                }}},
            "/api/stream": {"get": {
                "summary": "WebSocket: live 16-bit little-endian PCM in, one JSON row per hop out",
                "description": "Declare the audio in the query (`sample_rate`, `channels`, `window`, `hop`) or "
                               "as a first text message `{\"sample_rate\": N}`; send PCM as binary messages "
                               f"(at most {limits.max_chunk_seconds:g} s each), then the text `end`. The server "
                               "answers `{event: ready}`, one row per window (as `tinyser listen --log`), "
                               "`{event: warning}` lines and `{event: end}`; errors come as `{error}` before it "
                               f"closes. At most {limits.max_streams} streams at once (more: close code 1013); "
                               "a client faster than real time is throttled, not buffered.",
                "parameters": [{"name": "sample_rate", "in": "query", "schema": {"type": "integer"}},
                               {"name": "channels", "in": "query", "schema": {"type": "integer", "default": 1}},
                               *window_params],
                "responses": {"101": {"description": "switching to WebSocket; rows follow",
                                      "content": {"application/json": {"schema": row}}}}}},
        },
    }
