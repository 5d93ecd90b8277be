"""The self-signed pair: kept while usable, made again for another address or near its end; unusable files refused."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from cti.tlsfiles import SELF_SIGNED_DAYS, TlsFiles, TlsFilesError, self_signed, server_context

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)


def test_the_pair_is_kept_while_usable_and_made_again_when_not(tmp_path: Path) -> None:
    first = self_signed(tmp_path, "127.0.0.1", NOW)
    pem = first.cert_file.read_bytes()
    server_context(first)  # the key matches the certificate
    assert self_signed(tmp_path, "127.0.0.1", NOW + datetime.timedelta(days=30)).cert_file.read_bytes() == pem
    assert self_signed(tmp_path, "127.0.0.2", NOW).cert_file.read_bytes() != pem  # another address
    second = self_signed(tmp_path, "127.0.0.2", NOW).cert_file.read_bytes()
    late = NOW + datetime.timedelta(days=SELF_SIGNED_DAYS - 10)  # within the renewal margin
    assert self_signed(tmp_path, "127.0.0.2", late).cert_file.read_bytes() != second
    assert self_signed(tmp_path, "cti.example", NOW).cert_file.read_bytes()  # a DNS name works too


def test_files_that_cannot_be_used_are_refused_with_their_names(tmp_path: Path) -> None:
    a = self_signed(tmp_path / "a", "127.0.0.1", NOW)
    b = self_signed(tmp_path / "b", "127.0.0.1", NOW)
    with pytest.raises(TlsFilesError, match="cannot use certificate"):
        server_context(TlsFiles(a.cert_file, b.key_file))  # key of another certificate
    with pytest.raises(TlsFilesError, match=str(tmp_path / "nope.pem")):
        server_context(TlsFiles(tmp_path / "nope.pem", a.key_file))
