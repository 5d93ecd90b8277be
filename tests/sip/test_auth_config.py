"""The ``sip.digest_algorithms`` key: MD5 alone by default, SHA-256 only when listed, bad lists refused
with file:line (docs/sip-auth.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigFileError
from config.loader import demo_config_path, load_config
from cti.node.registration import RegistrationService
from sip.auth import DigestAlgorithm, parse_challenge


def test_the_demo_offers_md5_alone() -> None:
    config = load_config(demo_config_path()).config
    assert config.sip.digest_algorithms == ("MD5",)
    challenges = RegistrationService(config).auth.challenges(1.0)
    assert [parse_challenge(c).algorithm for c in challenges] == [DigestAlgorithm.MD5]


def test_sha256_is_offered_in_the_configured_order(tmp_path: Path) -> None:
    path = tmp_path / "cti.yaml"
    path.write_text("sip:\n  digest_algorithms: [SHA-256, MD5]\n")
    config = load_config(path).config
    challenges = RegistrationService(config).auth.challenges(1.0)
    assert [parse_challenge(c).algorithm for c in challenges] == [DigestAlgorithm.SHA_256, DigestAlgorithm.MD5]


@pytest.mark.parametrize(("value", "reason"), [
    ("[SHA-1]", "sip.digest_algorithms.0: Input should be 'MD5' or 'SHA-256'"),
    ("[md5]", "sip.digest_algorithms.0: Input should be 'MD5' or 'SHA-256'"),
    ("[MD5, MD5]", "sip.digest_algorithms: each digest algorithm may be listed once"),
    ("[]", "sip.digest_algorithms: Tuple should have at least 1 item"),
])
def test_a_bad_algorithm_list_is_refused_with_file_and_line(tmp_path: Path, value: str, reason: str) -> None:
    path = tmp_path / "cti.yaml"
    path.write_text(f"sip:\n  realm: cti.test\n  digest_algorithms: {value}\n")
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    rendered = [str(p) for p in caught.value.problems]
    assert any(r.startswith(f"{path}:3: ") and reason in r for r in rendered), rendered
