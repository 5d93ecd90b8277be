"""SIP over TLS and HTTPS/WSS on a real `cti serve` (issue 16 §3): the self-signed SIP certificate the node
makes in its data dir, a configured HTTPS certificate, requests over each, and a certificate that cannot be used."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from cti.tlsfiles import self_signed
from tests.support.procs import ServerProcess, free_port, run_server

REPO = Path(__file__).resolve().parents[2]
TOKEN = "demo-operator-token-0001"


def _config(tmp: Path, tls_port: int, http_cert: Path | None = None, http_key: Path | None = None) -> Path:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["flows_dir"] = str(REPO / "config" / "flows")
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    config["sip"].update(transports=["udp", "tcp", "tls"], tls_port=tls_port)
    if http_cert is not None and http_key is not None:
        config["http"]["tls"] = {"cert_file": str(http_cert), "key_file": str(http_key)}
    path = tmp / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int, Path]]:
    tmp = tmp_path_factory.mktemp("tls")
    http_files = self_signed(tmp / "http-cert", "127.0.0.1")  # the operator's own certificate for HTTPS
    tls_port = free_port("tcp")
    with run_server(tmp, config=_config(tmp, tls_port, http_files.cert_file, http_files.key_file)) as server:
        yield server, tls_port, http_files.cert_file


def _sip_over_tls(port: int, cafile: Path, request: str) -> str:
    context = ssl.create_default_context(cafile=str(cafile))  # verifies the chain and the address
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        local = sock.getsockname()[1]
        sock.sendall(request.replace("LOCALPORT", str(local)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed before an answer: {data!r}"
            data += chunk
        return data.decode()


def _request(method: str, port: int, call_id: str, uri: str = "sip:127.0.0.1") -> str:
    return (f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.1:LOCALPORT;branch=z9hG4bK-{call_id};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:1001@127.0.0.1>;tag=t-{call_id}\r\n"
            f"To: <sip:1001@127.0.0.1>\r\n"
            f"Call-ID: {call_id}@tls.test\r\n"
            f"CSeq: 1 {method}\r\n"
            "Contact: <sip:1001@127.0.0.1:LOCALPORT;transport=tls>\r\n"
            "Content-Length: 0\r\n\r\n")


def test_sip_over_tls_answers_with_the_self_signed_certificate(node: tuple[ServerProcess, int, Path]) -> None:
    server, tls_port, _ = node
    cert = server.data_dir / "tls" / "cert.pem"
    key = server.data_dir / "tls" / "key.pem"
    assert cert.is_file() and key.is_file(), "the node made no self-signed pair in its data dir"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    options = _sip_over_tls(tls_port, cert, _request("OPTIONS", tls_port, "opt1"))
    assert options.startswith("SIP/2.0 200"), options
    assert "SIP/2.0/TLS" in options  # our Via came back on the TLS transport
    register = _sip_over_tls(tls_port, cert, _request("REGISTER", tls_port, "reg1"))
    assert register.startswith("SIP/2.0 401"), register
    assert "WWW-Authenticate: Digest" in register
    assert "sip.tls.self_signed" in server.log_text()


def test_plain_tcp_on_the_tls_port_gets_nothing(node: tuple[ServerProcess, int, Path]) -> None:
    _, tls_port, _ = node
    with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as sock:
        sock.sendall(_request("OPTIONS", tls_port, "plain").replace("LOCALPORT", "5999").encode())
        sock.settimeout(10)
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
    assert not data.startswith(b"SIP/2.0"), data


def test_https_and_wss(node: tuple[ServerProcess, int, Path]) -> None:
    server, _, http_cert = node

    async def run() -> None:
        context = ssl.create_default_context(cafile=str(http_cert))
        base = f"https://127.0.0.1:{server.http_port}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
            async with http.get(f"{base}/healthz") as answer:
                assert answer.status == 200
            async with http.get(f"{base}/api/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"}) as answer:
                assert answer.status == 200
            login = {"role": "supervisor", "id": "sup1", "password": "demosup1"}
            async with http.post(f"{base}/auth/login", json=login) as answer:
                assert answer.status == 200, await answer.text()
                token = (await answer.json())["token"]
            async with http.ws_connect(f"wss://127.0.0.1:{server.http_port}/ws?token={token}") as ws:
                hello = await ws.receive_json(timeout=10)
                assert hello["type"] == "hello"
        async with aiohttp.ClientSession() as plain:  # plain HTTP on the HTTPS port is not served
            with pytest.raises(aiohttp.ClientError):
                async with plain.get(f"http://127.0.0.1:{server.http_port}/healthz",
                                     timeout=aiohttp.ClientTimeout(total=10)) as answer:
                    await answer.read()

    asyncio.run(run())


def test_a_certificate_that_cannot_be_used_stops_the_start_with_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    config = _config(tmp_path, free_port("tcp"), missing, missing)
    done = subprocess.run([sys.executable, "-m", "cti", "serve", "--config", str(config), "--sip-port",
                           str(free_port()), "--http-port", str(free_port("tcp")), "--data-dir",
                           str(tmp_path / "var")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 2, done.stderr
    assert f"cannot use certificate {missing}" in done.stderr
