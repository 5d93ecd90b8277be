"""Random identifiers: Via branch (RFC 3261 §8.1.1.7), From/To tags (§19.3) and Call-ID (§8.1.1.4).

All come from :mod:`secrets`, so they are unguessable as well as unique.
"""

from __future__ import annotations

import secrets
from typing import NewType

Branch = NewType("Branch", str)
Tag = NewType("Tag", str)
CallId = NewType("CallId", str)

# RFC 3261 §8.1.1.7: "The branch ID inserted by an element compliant with this specification
# MUST always begin with the characters "z9hG4bK"."
MAGIC_COOKIE = "z9hG4bK"


def new_branch() -> Branch:
    return Branch(MAGIC_COOKIE + secrets.token_hex(10))


def new_tag() -> Tag:
    """§19.3: "at least 32 bits of randomness"; we use 64."""
    return Tag(secrets.token_hex(8))


def new_call_id(host: str | None = None) -> CallId:
    """A globally unique Call-ID, ``random@host`` when a host is given (§20.8)."""
    local = secrets.token_hex(16)
    return CallId(f"{local}@{host}" if host else local)


def is_rfc3261_branch(branch: str | None) -> bool:
    return branch is not None and branch.startswith(MAGIC_COOKIE)
