"""Serving the pages (cti/http/pages.py): content types, caching, the start page, nothing outside cti/web."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.http.pages import PAGES, WEB_ROOT, add_page_routes, load_static


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    add_page_routes(app)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_each_page_is_html_with_revalidation_and_a_strict_policy(client: TestClient) -> None:
    for path in PAGES:
        resp = await client.get(path)
        assert resp.status == 200, path
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert resp.headers["Cache-Control"] == "no-cache"
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert (await resp.text()).startswith("<!doctype html>")


async def test_start_page_links_the_three_pages(client: TestClient) -> None:
    html = await (await client.get("/")).text()
    assert set(re.findall(r'href="(/[a-z]+)"', html)) == {"/agent", "/supervisor", "/wallboard"}


async def test_assets_have_their_content_types_and_an_etag_that_gives_304(client: TestClient) -> None:
    kinds = {"/web/js/agent.js": "text/javascript; charset=utf-8", "/web/css/app.css": "text/css; charset=utf-8",
             "/web/favicon.svg": "image/svg+xml"}
    for path, kind in kinds.items():
        resp = await client.get(path)
        assert resp.status == 200 and resp.headers["Content-Type"] == kind, path
        etag = resp.headers["ETag"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304 and await again.read() == b"" and again.headers["ETag"] == etag


async def test_nothing_outside_the_loaded_files_is_served(client: TestClient) -> None:
    for path in ("/web/../pages.py", "/web/%2e%2e/pages.py", "/web/js/nope.js", "/web/agent.html", "/web//etc/passwd"):
        resp = await client.get(path)
        assert resp.status == 404, path


def test_every_page_module_and_stylesheet_it_names_exists() -> None:
    files = load_static()
    for name in PAGES.values():
        html = files[name].body.decode()
        for ref in re.findall(r'(?:src|href)="/web/([^"]+)"', html):
            assert ref in files, f"{name} names /web/{ref}, which is not shipped"
    for name, file in files.items():
        if name.endswith(".js"):
            for ref in re.findall(r'from "\./([^"]+)"', file.body.decode()):
                assert f"js/{ref}" in files, f"{name} imports ./{ref}, which is not shipped"


def test_markup_carries_message_keys_not_words() -> None:
    """Text comes from the message tables (js/i18n.js): no visible words typed into the HTML."""
    for name in PAGES.values():
        html = (WEB_ROOT / name).read_text()
        body = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", html, flags=re.S)
        text = re.sub(r"<[^>]+>", " ", body)
        assert text.split() == [], f"{name} has literal text: {text.split()[:5]}"


def test_every_message_key_exists_in_both_languages() -> None:
    keys_en: set[str] = set()
    keys_zh: set[str] = set()
    for table in [WEB_ROOT / "js" / "i18n.js", *(WEB_ROOT / "js").glob("*-i18n.js")]:  # a feature's own keys too
        en, zh = table.read_text().split('"zh-CN": {', 1)
        keys_en |= set(re.findall(r'^\s+"([a-z_.]+)":', en, flags=re.M))
        keys_zh |= set(re.findall(r'^\s+"([a-z_.]+)":', zh, flags=re.M))
    assert keys_en and keys_en == keys_zh, sorted(keys_en ^ keys_zh)
    used: set[str] = set()
    for path in [*WEB_ROOT.glob("*.html"), *(WEB_ROOT / "js").glob("*.js")]:
        text = path.read_text()
        used |= set(re.findall(r'data-i18n(?:-label)?="([a-z_.]+)"', text))
        used |= set(re.findall(r'\bt\("([a-z_.]+)"', text))
        used |= set(re.findall(r'"data-i18n": "([a-z_.]+)"', text))
    assert used - keys_en == set()


def test_package_data_ships_the_web_files() -> None:
    """pyproject.toml's package-data globs cover every file the server loads."""
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    globs = re.search(r'^cti = \[(.*)\]$', pyproject, flags=re.M)
    assert globs is not None
    patterns = re.findall(r'"([^"]+)"', globs.group(1))
    for name in load_static():
        assert any(Path("web", name).match(p) for p in patterns), name
