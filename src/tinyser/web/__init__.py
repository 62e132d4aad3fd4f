"""The local web app and HTTP API (``tinyser serve``; the ``[web]`` extra).

:mod:`tinyser.web.core` holds what does not need the web stack (limits,
uploads decoded from memory, live streams, the model card), so it is tested
and documented without Starlette; :func:`tinyser.web.app.create_app` builds
the Starlette application on top of it, and :func:`tinyser.web.server.serve`
runs it with uvicorn. Everything goes through :mod:`tinyser.inference`, the
same API as ``tinyser predict`` and ``tinyser listen``.
"""
