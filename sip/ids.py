"""Random identifiers: Via branch (RFC 3261 §8.1.1.7), From/To tags (§19.3) and Call-ID (§8.1.1.4), and the
random numbers an RTP stream starts from (RFC 3550 §5.1, §8).

All come from the kernel's generator (``os.urandom``, what :mod:`secrets` reads), so they are unguessable as well
as unique. A call takes about twenty of them; one ``getrandom`` call each cost more than the rest of making
them, so they are read 4 KiB at a time (``_Entropy``): the same bytes, fewer system calls. A byte is
never handed out twice, across threads (a lock) and across ``fork`` (the child starts with an empty buffer).
"""

from __future__ import annotations

import os
import threading
from typing import NewType

Branch = NewType("Branch", str)
Tag = NewType("Tag", str)
CallId = NewType("CallId", str)

# RFC 3261 §8.1.1.7: "The branch ID inserted by an element compliant with this specification
# MUST always begin with the characters "z9hG4bK"."
MAGIC_COOKIE = "z9hG4bK"


_BUFFER_BYTES = 4096


class _Entropy:
    """``os.urandom`` bytes read ahead and handed out once each."""

    def __init__(self) -> None:
        self._buffer = b""
        self._used = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bytes:
        with self._lock:
            start = self._used
            if start + n > len(self._buffer):
                self._buffer, start = os.urandom(max(_BUFFER_BYTES, n)), 0
            self._used = start + n
            return self._buffer[start:start + n]

    def forget(self) -> None:
        """After ``fork``: the child must not hand out the bytes its parent will."""
        self._buffer, self._used, self._lock = b"", 0, threading.Lock()


_entropy = _Entropy()
os.register_at_fork(after_in_child=_entropy.forget)


def random_bits(k: int) -> int:
    """A random integer of ``k`` bits (0 <= result < 2**k), as ``secrets.randbits(k)``."""
    return int.from_bytes(_entropy.take((k + 7) // 8), "big") >> (-k % 8)


def new_branch() -> Branch:
    return Branch(MAGIC_COOKIE + _entropy.take(10).hex())


def new_tag() -> Tag:
    """§19.3: "at least 32 bits of randomness"; we use 64."""
    return Tag(_entropy.take(8).hex())


def new_call_id(host: str | None = None) -> CallId:
    """A globally unique Call-ID, ``random@host`` when a host is given (§20.8)."""
    local = _entropy.take(16).hex()
    return CallId(f"{local}@{host}" if host else local)


def is_rfc3261_branch(branch: str | None) -> bool:
    return branch is not None and branch.startswith(MAGIC_COOKIE)
