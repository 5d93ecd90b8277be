"""The node's own pages: the agent desktop, the supervisor console and the wallboard (docs/web.md).

Static files shipped inside the package (``cti/web/``): plain HTML, CSS and ES modules, no build step, nothing
fetched from elsewhere. The pages talk to the node only through the public contract (``POST /auth/login``, ``/ws``;
docs/websocket.md), like any third-party desktop.

Routes (mounted with :func:`add_page_routes`):

| path | answer |
|---|---|
| ``GET /`` | the start page linking the three pages |
| ``GET /agent``, ``/supervisor``, ``/wallboard``, ``/qa/evaluate``, ``/qa/mine`` | the page's HTML |
| ``GET /web/{path}`` | a CSS / JS / SVG file of ``cti/web/`` |

Every file is read once, off the event loop, when the app starts (``on_startup``) and kept in memory with a strong
ETag. Answers carry ``Cache-Control: no-cache`` (the browser revalidates, a 304 costs no body), the exact
``Content-Type``, and a Content-Security-Policy that allows only this origin (scripts, styles, the WebSocket).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

__all__ = ["PAGES", "WEB_ROOT", "StaticFile", "add_page_routes", "load_static"]

WEB_ROOT: Final = Path(__file__).resolve().parents[1] / "web"
"""Where the page files live in the installed package."""

PAGES: Final = {"/": "index.html", "/agent": "agent.html", "/supervisor": "supervisor.html",
                "/wallboard": "wallboard.html", "/qa/evaluate": "qa-evaluate.html", "/qa/mine": "qa-mine.html"}
"""Page paths and the HTML file each serves."""

_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": ("default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One file, ready to send."""

    body: bytes
    content_type: str
    etag: str


def load_static(root: Path = WEB_ROOT) -> dict[str, StaticFile]:
    """Read every servable file under ``root`` (blocking: call it in a thread). Keys are POSIX relative paths.

    Raises:
        FileNotFoundError: ``root`` or one of the page files is missing (a broken install).
    """
    files: dict[str, StaticFile] = {}
    for path in sorted(root.rglob("*")):
        kind = _TYPES.get(path.suffix)
        if kind is None or not path.is_file():
            continue
        body = path.read_bytes()
        files[path.relative_to(root).as_posix()] = StaticFile(body, kind, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    missing = sorted(set(PAGES.values()) - files.keys())
    if missing:
        raise FileNotFoundError(f"page files missing under {root}: {', '.join(missing)}")
    return files


def _answer(request: web.Request, file: StaticFile) -> web.Response:
    headers = {"ETag": file.etag, "Cache-Control": "no-cache", **_SECURITY_HEADERS}
    if file.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = file.content_type
    return web.Response(body=file.body, headers=headers)


def add_page_routes(app: web.Application, *, root: Path = WEB_ROOT) -> None:
    """Mount ``/``, ``/agent``, ``/supervisor``, ``/wallboard`` and ``/web/{path}`` on ``app``.

    The files are loaded when the app starts; a missing page file then fails the start (``FileNotFoundError``).
    """

    files: dict[str, StaticFile] = {}

    async def load(_: web.Application) -> None:
        files.update(await asyncio.to_thread(load_static, root))

    app.on_startup.append(load)

    def page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return _answer(request, files[name])
        return handler

    async def asset(request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        file = None if rel.endswith(".html") else files.get(rel)
        if file is None:  # unknown names, "..", absolute paths: nothing outside the loaded table exists
            raise web.HTTPNotFound(text="no such file", content_type="text/plain")
        return _answer(request, file)

    for path, name in PAGES.items():
        app.router.add_get(path, page(name))
    app.router.add_get("/web/{path:.+}", asset)
