"""TLS for the node's listeners: server contexts from PEM files, and a self-signed pair for local use.

SIP over TLS (``sip.transports`` holding ``tls``) and HTTPS/WSS (``http.tls``) load a certificate
chain and key (``config.TlsConfig``). When SIP TLS is on without a certificate, the node makes a
self-signed one for its bind address in ``<data_dir>/tls/`` (kept across restarts, made again when it
is near its end or names another address): enough for a phone on the same desk told to accept it,
never for a carrier. Everything here blocks (files, key generation): call it from a thread.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cti.errors import CtiError

SELF_SIGNED_DAYS = 825
RENEW_BEFORE = datetime.timedelta(days=30)


class TlsFilesError(CtiError):
    """A certificate or key could not be read or does not match: the listener cannot start."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert_file: Path
    key_file: Path


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A server-side context (TLS 1.2 or newer) holding ``files``' chain and key.

    Raises:
        TlsFilesError: a file is missing or unreadable, not PEM, or the key does not match.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(files.cert_file), str(files.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsFilesError(f"cannot use certificate {files.cert_file} with key {files.key_file}: {exc}") from exc
    return context


def self_signed(directory: Path, host: str, now: datetime.datetime | None = None) -> TlsFiles:
    """The self-signed pair for ``host`` in ``directory`` (``cert.pem``, ``key.pem``), made when absent,
    expiring within ``RENEW_BEFORE`` or made for another host. The key file is readable by the owner only.

    Raises:
        TlsFilesError: the directory cannot be written.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    files = TlsFiles(directory / "cert.pem", directory / "key.pem")
    if _usable(files, host, now):
        return files
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cti-server (self-signed)")])
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
            .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(files.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise TlsFilesError(f"cannot write a self-signed certificate in {directory}: {exc}") from exc
    return files


def _names(host: str) -> list[x509.GeneralName]:
    try:
        return [x509.IPAddress(ipaddress.ip_address(host))]
    except ValueError:
        return [x509.DNSName(host)]


def _usable(files: TlsFiles, host: str, now: datetime.datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
        files.key_file.stat()
    except (OSError, ValueError):
        return False
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    wanted = _names(host)[0]
    return wanted in list(names) and cert.not_valid_after_utc - RENEW_BEFORE > now
