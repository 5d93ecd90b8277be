"""``cti voicemail ...``: list, fetch and mark heard the messages callers left (docs/voicemail.md).

The group talks to the admin API (``/api/v1/voicemail...``) of the server at ``--url`` (env ``CTI_URL``, default
``http://127.0.0.1:8080``) with ``--token`` (env ``CTI_TOKEN``): the operator token, or a supervisor's login token
(it sees the mailboxes of its queues). Exit codes: 0 success; 1 the server is unreachable, refused the token or
the request (the API's error code and message on stderr); 2 bad usage (click).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import quote, urlencode

import click

from cti.cli.http import DEFAULT_URL, ApiClient, OpsError

__all__ = ["voicemail"]

_TIMEOUT_S = 10.0
_AUDIO_TIMEOUT_S = 60.0

_url = click.option("--url", envvar="CTI_URL", default=DEFAULT_URL, show_default=True,
                    help="server admin URL (env CTI_URL)")
_token = click.option("--token", envvar="CTI_TOKEN", help="operator or supervisor token (env CTI_TOKEN)")


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.group("voicemail")
def voicemail() -> None:
    """Voicemail messages of a running server."""


@voicemail.command("list")
@click.option("--mailbox", help="only this mailbox")
@click.option("--unheard", is_flag=True, help="only messages nobody marked heard")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the API's JSON answer")
@_token
@_url
def list_messages(mailbox: str | None, unheard: bool, limit: int, as_json: bool, token: str | None,
                  url: str) -> None:
    """Messages, newest first."""
    query: dict[str, str] = {"limit": str(limit)}
    if mailbox:
        query["mailbox"] = mailbox
    if unheard:
        query["unheard"] = "true"
    data = ApiClient(url, token, _TIMEOUT_S).request("GET", f"/api/v1/voicemail?{urlencode(query)}")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    rows = [("ID", "MAILBOX", "CALLER", "STARTED (UTC)", "SECONDS", "HEARD")]
    rows += [(m["id"], m["mailbox"], m["caller_number"], _when(m["started"]), f"{m['duration_s']:.1f}",
              "yes" if m["heard"] else "no") for m in data["voicemail"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@voicemail.command("fetch")
@click.argument("voicemail_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="file to write (default: ID.wav in the current directory)")
@_token
@_url
def fetch(voicemail_id: str, output: Path | None, token: str | None, url: str) -> None:
    """Save a message's audio (WAV, 8 kHz mono) to a file."""
    audio = ApiClient(url, token, _AUDIO_TIMEOUT_S).download(f"/api/v1/voicemail/{quote(voicemail_id, safe='')}/audio")
    target = output or Path(f"{voicemail_id}.wav")
    try:
        target.write_bytes(audio)
    except OSError as exc:
        raise OpsError(f"cannot write {target}: {exc.strerror or exc}") from exc
    click.echo(f"{target}: {len(audio)} bytes")


@voicemail.command("heard")
@click.argument("voicemail_id")
@_token
@_url
def heard(voicemail_id: str, token: str | None, url: str) -> None:
    """Mark a message heard (the first listener and time are kept)."""
    data = ApiClient(url, token, _TIMEOUT_S).request("POST", f"/api/v1/voicemail/{quote(voicemail_id, safe='')}/heard")
    click.echo(f"{data['id']}: heard by {data['heard_by']} at {_when(data['heard_at'])}")
