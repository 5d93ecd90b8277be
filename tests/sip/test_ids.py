"""Random identifiers: their form, the read-ahead buffer they come from, and a fork that must not repeat them."""

from __future__ import annotations

import os

from sip.ids import MAGIC_COOKIE, new_branch, new_call_id, new_tag, random_bits


def test_identifiers_have_their_form_and_never_repeat() -> None:
    branches = {new_branch() for _ in range(3_000)}  # 30 KB: the 4 KiB buffer is read again several times
    assert len(branches) == 3_000 and all(b.startswith(MAGIC_COOKIE) and len(b) == 7 + 20 for b in branches)
    tags = {new_tag() for _ in range(1_000)}
    assert len(tags) == 1_000 and all(len(t) == 16 and int(t, 16) >= 0 for t in tags)
    assert new_call_id("node.example").endswith("@node.example") and len(new_call_id()) == 32


def test_random_bits_stay_in_range_and_use_every_bit() -> None:
    for k in (1, 7, 8, 12, 16, 32):
        values = [random_bits(k) for _ in range(400)]
        assert all(0 <= v < 2**k for v in values)
        seen = 0
        for v in values:
            seen |= v
        assert seen == 2**k - 1  # every bit set at least once in 400 draws (chance of failing: < 2**-300)
    assert 0 <= random_bits(40_000) < 2**40_000  # more than the buffer at once


def test_a_forked_child_does_not_hand_out_its_parents_bytes() -> None:
    new_tag()  # the buffer holds unread bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the bytes it takes next
        try:
            os.write(write, new_call_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        child = os.read(read, 32)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert len(child) == 32 and child.decode() != new_call_id()
