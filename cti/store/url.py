"""Database URLs: which backend a store target names, and the same URL with its password hidden.

A target is a filesystem path (SQLite) or a ``postgresql://`` / ``postgres://`` URL (PostgreSQL,
libpq's URL form: ``postgresql://user:password@host:5432/dbname?sslmode=require``). The password
of a URL never goes into a log line or an error message: use ``redact_url`` for the URL itself
and ``scrub`` for text a driver produced from it.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

_SCHEMES = ("postgresql://", "postgres://")
_PASSWORD_PARAM = re.compile(r"(?i)((?:^|&)(?:ssl)?password=)([^&#]*)")
HIDDEN = "***"


def is_postgres_url(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` is a PostgreSQL URL rather than the path of an SQLite file."""
    return isinstance(target, str) and target.lower().startswith(_SCHEMES)


def _split(url: str) -> tuple[str, str, str, str]:
    """``(scheme://, userinfo, rest of the authority and path, query)``; userinfo runs to the last
    ``@`` before the query, so a password with an unescaped ``/`` or ``@`` is still all of it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", url, ""
    head, _, query = rest.partition("?")
    userinfo, at, hosts = head.rpartition("@")
    return scheme + sep, userinfo if at else "", hosts if at else head, query


def redact_url(url: str) -> str:
    """``url`` with the password of its user part and any ``password=`` parameter replaced by ``***``."""
    scheme, userinfo, hosts, query = _split(url)
    user, colon, _ = userinfo.partition(":")
    auth = f"{user}{':' + HIDDEN if colon else ''}@" if userinfo else ""
    query = _PASSWORD_PARAM.sub(lambda m: m[1] + HIDDEN, query)
    return f"{scheme}{auth}{hosts}{'?' + query if query else ''}"


def url_secrets(url: str) -> tuple[str, ...]:
    """The passwords written in ``url``, as written and percent-decoded (what a driver may echo)."""
    _, userinfo, _, query = _split(url)
    found = [userinfo.partition(":")[2]] + [m[2] for m in _PASSWORD_PARAM.finditer(query)]
    return tuple(sorted({s for raw in found for s in (raw, unquote(raw)) if s}, key=len, reverse=True))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, HIDDEN)
    return text
