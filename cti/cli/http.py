"""The command line's one HTTP client of the admin API (aiohttp, as the server and the webhooks use).

Every operator command (``cti status``, ``cti agents ...``, ``cti webhooks ...``) asks the node through
:class:`ApiClient`: one request per call, run to completion with ``asyncio.run`` and bounded by the
command's timeout. Failures become :class:`OpsError`, which click prints as one line on stderr
(``cti: <code>: <message>``) with exit code 1.
"""

from __future__ import annotations

import asyncio
import json
from typing import IO, Any
from urllib.parse import urlsplit

import aiohttp
import click

from cti.errors import CtiError

__all__ = ["DEFAULT_URL", "ApiClient", "OpsError"]

DEFAULT_URL = "http://127.0.0.1:8080"


class OpsError(CtiError, click.ClickException):
    """A run-time failure of a CLI command: one line on stderr, exit code 1."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"cti: {self.message}", err=True)


class ApiClient:
    """A small client of the admin API: JSON in and out, the operator token as a Bearer header."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        """Raises: click.UsageError: ``url`` is not an http(s) URL."""
        parsed = urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise click.UsageError(f"--url must be an http(s) URL, not {url!r}")
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The decoded JSON answer (None for an empty one).

        Raises:
            OpsError: the server is unreachable or too slow, refused the request, or did not answer JSON.
        """
        return asyncio.run(self._request(method, path, body))

    def download(self, path: str) -> bytes:
        """The raw body of a GET (audio, CSV...).

        Raises:
            OpsError: the server is unreachable or too slow, or refused the request.
        """
        return asyncio.run(self._exchange("GET", path, None, accept="*/*"))

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        raw = await self._exchange(method, path, body, accept="application/json")
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise OpsError(f"the server at {self.url} did not answer JSON (is it a cti server?)") from exc

    async def _exchange(self, method: str, path: str, body: dict[str, Any] | None, *, accept: str) -> bytes:
        headers = {"Accept": accept}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            async with asyncio.timeout(self.timeout), aiohttp.ClientSession() as session:
                async with session.request(method, self.url + path, json=body, headers=headers) as answer:
                    status, raw = answer.status, await answer.read()
        except TimeoutError as exc:
            raise self._unreachable(f"timed out after {self.timeout:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise self._unreachable(_reason(exc.os_error)) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise self._unreachable(_reason(exc)) from exc
        if not 200 <= status < 300:
            raise self._refused(status, raw)
        return raw

    def _unreachable(self, reason: str) -> OpsError:
        return OpsError(f"cannot reach the server at {self.url}: {reason}")

    def _refused(self, status: int, raw: bytes) -> OpsError:
        try:
            err = json.loads(raw)["error"]
            code, message = str(err["code"]), str(err["message"])
            problems = err.get("problems") or []
        except (ValueError, KeyError, TypeError):
            return OpsError(f"HTTP {status} from {self.url} (not a cti admin API answer)")
        hint = ""
        if code == "unauthorized":
            hint = (" (the server refused the token: give --token or set CTI_TOKEN)" if self.token
                    else " (give --token or set CTI_TOKEN)")
        lines = [f"{code}: {message}{hint}"]
        lines.extend(f"  {p.get('file')}:{p.get('line')}: {p.get('reason')}" for p in problems if isinstance(p, dict))
        return OpsError("\n".join(lines))


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__
