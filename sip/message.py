"""SIP messages: parse and serialise requests and responses.

RFC 3261 §7 (message format: start line, header folding §7.3.1, compact forms §7.3.3,
Content-Length §18.3 and §20.14), §8.2.6 (building a response to a request), §20 and §25.
The only place where header names are raw strings: the rest of the stack reads typed values
(:class:`~sip.headers.Via`, :class:`~sip.headers.CSeq`, :class:`~sip.headers.NameAddr`).

Strict where the RFC calls a message malformed (the error carries the status to answer with),
tolerant where real clients differ (header case, compact forms, LWS, missing Max-Forwards,
bare LF line ends). Cutting bytes into messages and lines lives in :mod:`sip.framing`.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sip.errors import LocalSipError, MessageTooLargeError, RemoteSipError
from sip.framing import CTL_RE, MAX_BODY_BYTES, MAX_HEADER_BYTES, KeepAlivePing, StreamFramer, split_head
from sip.headers import Contact, CSeq, NameAddr, Via, split_list
from sip.sdp import clear_sdp_cache
from sip.uri import AbsoluteUri, SipUri, Uri, clear_uri_cache, parse_uri

__all__ = [  # KeepAlivePing, StreamFramer and the size limits live in sip.framing
    "COMPACT", "LIST_HEADERS", "MAX_BODY_BYTES", "MAX_HEADER_BYTES", "MAX_HEADER_FIELDS", "MAX_VIA_VALUES",
    "Outgoing", "REASONS", "SIP_VERSION", "Headers", "KeepAlivePing", "Message", "Request", "Response", "SentResponse",
    "StreamFramer", "canonical_name", "parse_message", "response_to",
]

_T = TypeVar("_T")
SIP_VERSION = "SIP/2.0"
MAX_HEADER_FIELDS = 256
# Not enforced. The parser once answered 483 past 70 Via values, but RFC 3261 §21.4.20 defines 483
# only for Max-Forwards 0 (a server-level check, §16.3 step 3), and no RFC limits the Via count: a
# request with many Vias is well-formed. MAX_HEADER_BYTES already bounds the work (~500 Vias).
MAX_VIA_VALUES = 70

COMPACT = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "o": "Event", "r": "Refer-To", "s": "Subject",
    "t": "To", "u": "Allow-Events", "v": "Via", "x": "Session-Expires", "y": "Identity",
}
_CANONICAL = {name.lower(): name for name in (
    *COMPACT.values(), "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Authentication-Info",
    "Authorization", "Call-Info", "Content-Disposition", "Content-Language", "CSeq", "Date", "Error-Info", "Expires",
    "In-Reply-To", "Max-Forwards", "Min-Expires", "MIME-Version", "Organization", "Priority", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "Record-Route", "Reply-To", "Require", "Retry-After", "Route", "Server",
    "Timestamp", "Unsupported", "User-Agent", "Warning", "WWW-Authenticate", "RSeq", "RAck", "Path",
    "P-Asserted-Identity", "Privacy", "Replaces", "Min-SE", "Subscription-State", "Diversion",
)}
# Headers whose values may be joined with commas (RFC 3261 §7.3.1). Not the auth headers.
LIST_HEADERS = frozenset(n.lower() for n in (
    "Via", "Contact", "Route", "Record-Route", "Allow", "Supported", "Require", "Proxy-Require", "Unsupported",
    "Accept", "Accept-Encoding", "Accept-Language", "Allow-Events", "Content-Encoding", "Path", "Service-Route",
))
_SINGLE = frozenset(("From", "To", "Call-ID", "CSeq", "Max-Forwards"))
_SINGLE_KEYS = tuple(name.lower() for name in sorted(_SINGLE))
_MANDATORY = (("From", "from"), ("To", "to"), ("Call-ID", "call-id"), ("CSeq", "cseq"))
_TOKEN_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+\Z")
_WSP_RE = re.compile(r"\s")
# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (§7.2); a missing last SP is tolerated.
_STATUS_LINE_RE = re.compile(r"^SIP/([0-9]+)\.([0-9]+) ([0-9]{3})(?: (.*))?$", re.I)
_REQUEST_LINE_RE = re.compile(r"^(\S+) (\S+) (\S+)$")

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted", 300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    420: "Bad Extension", 421: "Extension Required", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
    500: "Server Internal Error", 501: "Not Implemented", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}


def _canonical(name: str) -> str:
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT:
        return COMPACT[lower]
    return _CANONICAL.get(lower, name)


# Header names seen so far -> (canonical name, its lower-case key). A message has a dozen names
# and they repeat from message to message; bounded so that a peer inventing names costs nothing.
_NAME_CACHE_SIZE = 1024
_names: dict[str, tuple[str, str]] = {}


def _name_key(name: str) -> tuple[str, str]:
    try:
        return _names[name]
    except KeyError:
        pass
    canonical = _canonical(name)
    pair = (canonical, canonical.lower())
    if len(_names) < _NAME_CACHE_SIZE:
        _names[name] = pair
    return pair


# The parser's own memo: the text before a header line's colon, once found to be a valid name (a
# token, with any white space before the colon) -> its pair, so that a name seen before is not checked
# again. Bounded like _names, and emptied with it.
_wire_names: dict[str, tuple[str, str]] = {}


def canonical_name(name: str) -> str:
    """Long, conventionally capitalised form of a header name (compact forms expanded)."""
    return _name_key(name)[0]


# The typed views a Headers value keeps once read (see _Message): dropped whenever a field changes.
_VIEWS = ("_via", "_vias", "_cseq", "_from", "_to", "_contacts", "_call_id")
_VIEW_SLOTS = {"via": ("_via", "_vias"), "cseq": ("_cseq",), "from": ("_from",), "to": ("_to",),
               "contact": ("_contacts",), "call-id": ("_call_id",)}


class Headers:
    """Ordered, case-insensitive multi-map of header fields, as (canonical name, raw value).

    It also keeps the typed views of its mandatory fields once they have been read (top Via, CSeq,
    From, To, Call-ID, Contact: see :class:`Request`), so that the layers reading them again and again
    pay a look-up; any change of the fields drops them.
    """

    __slots__ = ("_items", "_keys", "_viewed", *_VIEWS)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        self._keys: list[str] = []  # parallel to _items, lower-case canonical names, for lookups
        self._viewed = False  # True once a typed view was kept (then a change must drop them)
        self._via: Via | None = None
        self._vias: list[Via] | None = None
        self._cseq: CSeq | None = None
        self._from: NameAddr | None = None
        self._to: NameAddr | None = None
        self._contacts: list[Contact] | None = None
        self._call_id: str | None = None
        for name, value in items or ():
            self.add(name, value)

    def _changed(self) -> None:
        self._viewed = False
        self._via = self._vias = self._cseq = self._from = self._to = self._contacts = self._call_id = None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        """A copy (the typed views go along: they are frozen values of the same text)."""
        new = Headers()
        new._items = list(self._items)
        new._keys = list(self._keys)
        if self._viewed:
            new._viewed = True
            new._via, new._cseq, new._from, new._to, new._call_id = (
                self._via, self._cseq, self._from, self._to, self._call_id)
            new._vias = None if self._vias is None else list(self._vias)
            new._contacts = None if self._contacts is None else list(self._contacts)
        return new

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def get(self, name: str) -> str | None:
        """First raw field value, or None."""
        try:
            key = _names[name][1]
        except KeyError:
            key = _name_key(name)[1]
        keys = self._keys
        if key in keys:
            return self._items[keys.index(key)][1]
        return None

    def get_all(self, name: str) -> list[str]:
        """All values; comma lists are split for the headers that allow it (Via, Contact, Route...)."""
        try:
            key = _names[name][1]
        except KeyError:
            key = _name_key(name)[1]
        keys = self._keys
        if key not in keys:
            return []
        if keys.count(key) == 1:
            values = [self._items[keys.index(key)][1]]
        else:
            values = [item[1] for k, item in zip(keys, self._items, strict=True) if k == key]
        if key in LIST_HEADERS:
            if len(values) == 1:
                return split_list(values[0])
            return [part for value in values for part in split_list(value)]
        return values

    def add(self, name: str, value: str) -> None:
        try:
            canonical, key = _names[name]
        except KeyError:
            canonical, key = _name_key(name)
        self._items.append((canonical, value))
        self._keys.append(key)
        if self._viewed:
            self._changed()

    def prepend(self, name: str, value: str) -> None:
        canonical, key = _name_key(name)
        self._items.insert(0, (canonical, value))
        self._keys.insert(0, key)
        self._changed()

    def set(self, name: str, value: str) -> None:
        """Replace every field of ``name`` with one field, at the place of the first."""
        canonical, key = _name_key(name)
        try:
            index = self._keys.index(key)
        except ValueError:
            index = len(self._items)
        self.remove(name)
        self._items.insert(index, (canonical, value))
        self._keys.insert(index, key)
        self._changed()

    def replace_at_first(self, name: str, value: str) -> Headers:
        """A copy with the first field of ``name`` holding ``value`` instead (the others kept in place).

        Raises: KeyError when there is no such field.
        """
        key = _name_key(name)[1]
        keys = self._keys
        if key not in keys:
            raise KeyError(name)
        index = keys.index(key)
        new = Headers()
        new._items = list(self._items)
        new._items[index] = (new._items[index][0], value)
        new._keys = list(keys)
        if self._viewed:  # the views of the other fields stay true
            new._viewed = True
            new._via, new._cseq, new._from, new._to, new._call_id = (
                self._via, self._cseq, self._from, self._to, self._call_id)
            new._vias, new._contacts = self._vias, self._contacts
            for slot in _VIEW_SLOTS.get(key, ()):
                setattr(new, slot, None)
        return new

    def only(self, keys: frozenset[str]) -> Headers:
        """A copy with only the fields whose lower-case canonical name is in ``keys`` (values shared)."""
        new = Headers()
        for key, item in zip(self._keys, self._items, strict=True):
            if key in keys:
                new._keys.append(key)
                new._items.append(item)
        if self._viewed:  # the views of the fields kept stay true
            new._viewed = True
            if "via" in keys:
                new._via, new._vias = self._via, None if self._vias is None else list(self._vias)
            if "cseq" in keys:
                new._cseq = self._cseq
            if "from" in keys:
                new._from = self._from
            if "to" in keys:
                new._to = self._to
            if "call-id" in keys:
                new._call_id = self._call_id
            if "contact" in keys:
                new._contacts = None if self._contacts is None else list(self._contacts)
        return new

    def remove(self, name: str) -> None:
        key = _name_key(name)[1]
        if key in self._keys:
            kept = [(k, item) for k, item in zip(self._keys, self._items, strict=True) if k != key]
            self._keys = [k for k, _ in kept]
            self._items = [item for _, item in kept]
            self._changed()


# Typed header values already parsed, shared by every message: keyed by (parser, raw text), so a
# changed header has new text and the cache never goes stale; the values are frozen, so sharing
# them is safe. The messages of one dialog repeat the same From/To/Via/Contact text (the responses
# copy the request's), so most typed reads after the first are look-ups. Bounded: the oldest entry
# goes first (insertion order), which keeps the look-up a plain dict hit. Bounded in bytes too:
# a value longer than CACHED_TEXT_MAX characters is parsed every time and never cached, so hostile
# messages with huge headers cannot park megabytes here (8192 x 32 KiB was possible before).
# The size: a call's set-up (INVITE, 1xx, 2xx, ACK on both legs) reads about 15 distinct values within a
# second, so 2,048 entries keep the look-ups of the last half second at 250 calls/s; a BYE minutes later
# was never a hit at such rates. A flood of hostile SIP fills the cache (its mutations of a few
# templates hit it more than half the time) and what it holds is part of the burst's peak, which the
# memory left after the burst follows: 8,192 entries left 4-5 MB more (docs/sip-transactions.md).
VIEW_CACHE_SIZE = 2048
CACHED_TEXT_MAX = 512
# An OrderedDict: dropping its oldest entry is O(1). A plain dict's ``del d[next(iter(d))]`` walks
# the slots its earlier deletions left at the front: ~27 us an eviction with 8192 entries, paid for
# every new value once the cache is full, i.e. on every new dialog under load.
_view_cache: OrderedDict[tuple[object, str], Any] = OrderedDict()
_VIA_PARSE: Callable[[str], Via] = Via.parse
_CSEQ_PARSE: Callable[[str], CSeq] = CSeq.parse
_NAME_ADDR_PARSE: Callable[[str], NameAddr] = NameAddr.parse
_CONTACT_PARSE: Callable[[str], Contact] = Contact.parse


def clear_parse_caches() -> None:
    """Empty the parsed-value caches (the header views here, the URIs in :mod:`sip.uri`, the SDP bodies in
    :mod:`sip.sdp`).

    After a burst of traffic (a flood of hostile SIP) the caches hold thousands of entries made
    during it, scattered over the memory the burst used: they keep that memory from being given
    back when the rest of the burst is freed. The endpoint calls this when it releases memory
    (``sip.aio.release_memory``); the next messages parse again and refill the caches.
    """
    _view_cache.clear()
    _names.clear()  # header names a peer invented during the burst
    _wire_names.clear()
    clear_uri_cache()
    clear_sdp_cache()


def _view(parse: Callable[[str], _T], raw: str) -> _T:
    key = (parse, raw)
    value: _T | None = _view_cache.get(key)
    if value is not None:
        return value
    value = parse(raw)
    if len(raw) > CACHED_TEXT_MAX:
        return value
    if len(_view_cache) >= VIEW_CACHE_SIZE:
        _view_cache.popitem(last=False)
    _view_cache[key] = value
    return value


def _remember(parse: Callable[[str], _T], raw: str, value: _T) -> None:
    """Put a value we wrote (``raw`` is its text, which parses back to it) in the view cache: the peer's
    answer copies that text (our Via in the responses to our requests, our To tag in the caller's ACK
    and BYE), so reading it there is a look-up."""
    if len(raw) <= CACHED_TEXT_MAX and (parse, raw) not in _view_cache:
        if len(_view_cache) >= VIEW_CACHE_SIZE:
            _view_cache.popitem(last=False)
        _view_cache[(parse, raw)] = value


_SKELETON_KEYS = frozenset({"to", "call-id", "cseq"})


def _field(headers: Headers, key: str, name: str) -> str:
    """The first value of a mandatory field. Raises: RemoteSipError (400) when it is missing."""
    keys = headers._keys
    if key not in keys:
        raise RemoteSipError(f"missing {name}", status_hint=400)
    return headers._items[keys.index(key)][1]


@dataclass(slots=True, eq=True)
class _Message:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    # Typed views of the mandatory headers. Each raises RemoteSipError if missing or malformed. Kept by
    # the Headers once read (dropped when a field changes), and memoised across messages by _view.
    @property
    def vias(self) -> list[Via]:
        headers = self.headers
        vias = headers._vias
        if vias is None:
            vias = [_view(_VIA_PARSE, v) for v in headers.get_all("Via")]
            headers._vias, headers._viewed = vias, True
            if vias:
                headers._via = vias[0]
        return list(vias)

    @property
    def top_via(self) -> Via:
        headers = self.headers
        via = headers._via
        if via is None:
            first = headers.get_all("Via")
            if not first:
                raise RemoteSipError("missing Via", status_hint=400)
            via = headers._via = _view(_VIA_PARSE, first[0])
            headers._viewed = True
        return via

    @property
    def cseq(self) -> CSeq:
        headers = self.headers
        cseq = headers._cseq
        if cseq is None:
            cseq = headers._cseq = _view(_CSEQ_PARSE, _field(headers, "cseq", "CSeq"))
            headers._viewed = True
        return cseq

    @property
    def call_id(self) -> str:
        headers = self.headers
        call_id = headers._call_id
        if call_id is None:
            call_id = headers._call_id = _field(headers, "call-id", "Call-ID").strip()
            headers._viewed = True
        return call_id

    @property
    def from_(self) -> NameAddr:
        headers = self.headers
        from_ = headers._from
        if from_ is None:
            from_ = headers._from = _view(_NAME_ADDR_PARSE, _field(headers, "from", "From"))
            headers._viewed = True
        return from_

    @property
    def to(self) -> NameAddr:
        headers = self.headers
        to = headers._to
        if to is None:
            to = headers._to = _view(_NAME_ADDR_PARSE, _field(headers, "to", "To"))
            headers._viewed = True
        return to

    @property
    def contacts(self) -> list[Contact]:
        headers = self.headers
        contacts = headers._contacts
        if contacts is None:
            contacts = headers._contacts = [_view(_CONTACT_PARSE, v) for v in headers.get_all("Contact")]
            headers._viewed = True
        return list(contacts)

    @property
    def record_routes(self) -> list[NameAddr]:
        """The Record-Route values, in order. Raises: RemoteSipError (400) for one that does not parse."""
        return [_view(_NAME_ADDR_PARSE, v) for v in self.headers.get_all("Record-Route")]

    def replace_top_via(self, via: Via) -> None:
        """Put ``via`` in place of the top Via value, in a copy of the headers (others may share them);
        the new top Via's view is ``via`` itself (its text parses back to it)."""
        headers = self.headers
        first = headers.get("Via")
        if first is None:
            return
        text = str(via)
        _remember(_VIA_PARSE, text, via)
        if "," in first:
            text = ", ".join([text, *split_list(first)[1:]])
        new = self.headers = headers.replace_at_first("Via", text)
        new._via, new._viewed = via, True
        if headers._vias is not None:
            new._vias = [via, *headers._vias[1:]]

    def _serialise(self, start_line: str) -> bytes:
        """Start line, headers in order, body. Content-Length always tells the body's real size: it
        stays where it was (later copies dropped) or is appended, so that parse and serialise are
        inverse on parsed messages.

        Raises: LocalSipError for a header value holding CR or LF (header injection).
        """
        headers = self.headers
        if "content-length" not in headers._keys:  # what the node builds: one pass, one join
            head = "\r\n".join([f"{name}: {value}" for name, value in headers._items])
            if "\r" not in head and "\n" not in head:
                if head:
                    return f"{start_line}\r\n{head}\r\nContent-Length: {len(self.body)}\r\n\r\n".encode() + self.body
                return f"{start_line}\r\nContent-Length: {len(self.body)}\r\n\r\n".encode() + self.body
        lines = [start_line]
        length = f"Content-Length: {len(self.body)}"
        for name, value in self.headers:
            if name == "Content-Length":
                if length:
                    lines.append(length)
                    length = ""
                continue
            if "\n" in value or "\r" in value:
                raise LocalSipError(f"{name} value holds CR or LF")
            lines.append(f"{name}: {value}")
        if length:
            lines.append(length)
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(slots=True, eq=True)
class Request(_Message):
    """A SIP request. ``bytes(request)`` serialises it with a correct Content-Length."""

    method: str = "OPTIONS"
    uri: Uri = field(default_factory=lambda: parse_uri("sip:invalid"))

    def skeleton(self) -> Request:
        """This request with only To, Call-ID and CSeq and no body: what a server transaction still reads
        once its final response is sent (RFC 2543 matching reads the To tag, the ACK's bookkeeping the
        Call-ID and CSeq; retransmissions match by the keys the layer made from the Via at the start).
        Kept instead of the whole request for Timer J/H (32 s on UDP): under a flood of requests the
        transactions in Completed are most of the live memory (docs/sip-transactions.md)."""
        headers = self.headers.only(_SKELETON_KEYS)
        headers._changed()  # no typed views either: read again (through the memo) on the rare path that needs one
        return Request(method=self.method, uri=self.uri, headers=headers)

    def __bytes__(self) -> bytes:
        return self._serialise(f"{self.method} {self.uri} {SIP_VERSION}")

    @property
    def max_forwards(self) -> int | None:
        """Raises: RemoteSipError (400) when not a number in 0..255."""
        value = self.headers.get("Max-Forwards")
        if value is None:
            return None
        value = value.strip()
        if not (value.isascii() and value.isdigit()) or len(value.lstrip("0")) > 3 or int(value) > 255:
            raise RemoteSipError(f"bad Max-Forwards {value[:20]!r}", status_hint=400)
        return int(value)


@dataclass(slots=True, eq=True)
class Response(_Message):
    """A SIP response."""

    status: int = 200
    reason: str = "OK"

    def __bytes__(self) -> bytes:
        return self._serialise(f"{SIP_VERSION} {self.status} {self.reason}")


Message = Request | Response


@dataclass(frozen=True, slots=True)
class SentResponse:
    """A final response as it went on the wire: what a server transaction keeps to send it again.

    A server transaction in Completed (Timer J or H: 32 s over UDP) or Accepted (Timer L) only resends
    its final response, byte for byte (RFC 3261 §17.2.1, §17.2.2). Under a flood of requests those
    transactions are most of the node's live memory, and what a burst leaves behind in Python's arenas
    follows its peak (docs/sip-transactions.md, "Memory after a burst"): the response's bytes and the
    few fields matching and logging read cost a fraction of the parsed headers.
    """

    data: bytes
    status: int
    call_id: str | None
    cseq: str | None

    @classmethod
    def of(cls, response: Response) -> SentResponse:
        headers = response.headers
        return cls(bytes(response), response.status, headers.get("Call-ID"), headers.get("CSeq"))

    def to_tag(self) -> str | None:
        """The To tag sent, read back from the bytes: only RFC 2543 ACK matching asks, so no final response
        pays for it on the way out. None when the To cannot be read."""
        try:
            return parse_message(self.data).to.tag
        except RemoteSipError:
            return None

    def __bytes__(self) -> bytes:
        return self.data


Outgoing = Request | Response | SentResponse  # what the transaction layer hands the transport


def parse_message(data: bytes, *, stream: bool = False) -> Message:
    """Parse one whole SIP message (one datagram, or one frame cut by :class:`StreamFramer`).

    Raises:
        RemoteSipError: malformed; ``status_hint`` is the status to answer with (400, 416, 505,
            513...); ``partial`` holds the headers read so far (None when nothing can be answered).
    """
    lines, body, too_large, bad_text = split_head(data)
    if not lines or not lines[0]:
        raise MessageTooLargeError("start line too large") if too_large else RemoteSipError("empty message")
    start = lines[0]
    is_request = not start.upper().startswith("SIP/")
    headers = Headers()
    problem: RemoteSipError | None = None
    if too_large:
        problem = MessageTooLargeError("header section too large")
    elif len(lines) - 1 > MAX_HEADER_FIELDS:
        problem = MessageTooLargeError("too many header fields")
    items, keys, known = headers._items, headers._keys, _wire_names
    for line in lines[1 : MAX_HEADER_FIELDS + 1]:
        raw, colon, value = line.partition(":")
        if not colon:
            problem = problem or RemoteSipError(f"bad header line {line[:60]!r}")
            continue
        pair = known.get(raw)
        if pair is None:
            name = raw.rstrip()  # leading white space would be a fold onto the start line: refused
            if not _TOKEN_RE.match(name):
                problem = problem or RemoteSipError(f"bad header line {line[:60]!r}")
                continue
            pair = _name_key(name)
            if len(known) < _NAME_CACHE_SIZE:
                known[raw] = pair
        if bad_text and CTL_RE.search(line):  # never echo a control character (a lone CR!) back
            continue
        items.append((pair[0], value.strip()))
        keys.append(pair[1])
    if bad_text:  # §25.1: TEXT-UTF8 and LWS only
        problem = problem or RemoteSipError("header section is not valid UTF-8 or holds control characters")

    if problem is not None:
        try:
            raise _refused(problem, headers, is_request)
        finally:
            # The traceback keeps this frame, and a local naming the exception would close a reference
            # cycle (exception -> traceback -> frame -> exception): the whole message would then wait for
            # a cyclic collection, and under a flood of bad messages those wait in the oldest generation
            # (cti.app.tune_gc) and swell the heap (docs/sip-transactions.md, "Memory after a burst").
            problem = None
    message: Message
    try:
        message = _parse_start(start, headers) if is_request else _parse_status(start, headers)
        length = _check(message, headers, body, stream)
    except RemoteSipError as exc:
        raise _refused(exc, headers, is_request) from None
    message.body = body if length is None else body[:length]
    return message


def _refused(exc: RemoteSipError, headers: Headers, is_request: bool) -> RemoteSipError:
    """``exc`` with what the endpoint needs to answer it (see :func:`parse_message`)."""
    exc.partial = headers if _answerable(headers) and is_request else None
    exc.is_request = is_request
    return exc


# The start of a Via value up to its sent-by host: "SIP/2.0/UDP host" (any version, LWS allowed).
_VIA_SENT_BY_RE = re.compile(r"\s*SIP\s*/\s*[0-9]+\.[0-9]+\s*/\s*[A-Za-z0-9.!%*_+`'~-]+\s+[^\s;,:]+")


def _answerable(headers: Headers) -> bool:
    """A bad request can be answered iff its top Via names a sent-by: §18.2.2 sends responses by
    it, and §18.1.2 has the client match a response by its top Via's sent-by, so with none there
    is nobody to answer.

    The rest of that Via may be malformed (empty parameters, another version): RFC 4475 'badinv01'
    (``SIP/2.0/UDP 192.0.2.15;;,;,,``) should get a 400 and 'badvers' (``SIP/7.0/UDP ...``) a 505.
    The answer copies the Via values as they came and goes back where the request came from.
    Missing From, To, Call-ID or CSeq do not stop the answer: RFC 4475 ('insuf') says an element
    should ideally respond 400 to such a request; :func:`response_to` copies what is there.
    """
    vias = headers.get_all("Via")
    if not vias:
        return False
    try:
        Via.parse(vias[0])
    except RemoteSipError:
        return _VIA_SENT_BY_RE.match(vias[0]) is not None
    return True


def _parse_start(start: str, headers: Headers) -> Request:
    match = _REQUEST_LINE_RE.match(start)
    if match is None:
        raise RemoteSipError(f"bad request line {start[:80]!r}")
    method, uri_text, version = match.groups()
    if not _TOKEN_RE.match(method):
        raise RemoteSipError(f"bad method {method[:20]!r}")
    if version.upper() != SIP_VERSION:
        status = 505 if version.upper().startswith("SIP/") else 400
        raise RemoteSipError(f"unsupported version {version[:20]!r}", status_hint=status)
    uri = parse_uri(uri_text)
    if isinstance(uri, AbsoluteUri):
        raise RemoteSipError(f"unsupported URI scheme {uri.scheme!r}", status_hint=416)
    if isinstance(uri, SipUri) and uri.headers:  # §19.1.1 Table 1: headers are not allowed in a Request-URI
        raise RemoteSipError("header component in the Request-URI")
    return Request(method=method, uri=uri, headers=headers)


def _parse_status(start: str, headers: Headers) -> Response:
    match = _STATUS_LINE_RE.match(start)
    if match is None:
        raise RemoteSipError(f"bad status line {start[:80]!r}")
    if (match.group(1), match.group(2)) != ("2", "0"):
        raise RemoteSipError("unsupported version", status_hint=505)
    status = int(match.group(3))
    if not 100 <= status <= 699:
        raise RemoteSipError(f"bad status code {status}")
    return Response(status=status, reason=match.group(4) or "", headers=headers)


def _content_length(headers: Headers) -> int | None:
    keys = headers._keys
    if "content-length" not in keys:
        return None
    if keys.count("content-length") == 1:
        value = headers._items[keys.index("content-length")][1].strip()
    else:
        values = {v.strip() for v in headers.get_all("Content-Length")}
        if len(values) > 1:
            raise RemoteSipError("conflicting Content-Length values")
        value = values.pop()
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise RemoteSipError(f"bad Content-Length {value[:20]!r}")
    return int(value)


def _check(message: Message, headers: Headers, body: bytes, stream: bool) -> int | None:
    """Validate what the RFC calls malformed; return the Content-Length (None when absent)."""
    keys = headers._keys
    for name, key in _MANDATORY:
        if key not in keys:
            raise RemoteSipError(f"missing mandatory header {name}")
    # §20: these are single-valued (RFC 4475 'multi01' expects 400)
    if len(set(keys)) < len(keys) and max(map(keys.count, _SINGLE_KEYS)) > 1:
        seen: set[str] = set()
        for name, _ in headers:  # the first repeated in the order of the fields
            if name in _SINGLE and name in seen:
                raise RemoteSipError(f"more than one {name} header")
            seen.add(name)
    if not message.vias:
        raise RemoteSipError("missing mandatory header Via")
    cseq = message.cseq
    message.from_  # noqa: B018 - parse for validation
    message.to  # noqa: B018
    call_id = message.call_id
    if not call_id or _WSP_RE.search(call_id):
        raise RemoteSipError("bad Call-ID")
    length = _content_length(headers)
    if length is None and stream:
        raise RemoteSipError("Content-Length is required on stream transports (RFC 3261 §18.3)")
    if length is not None and length > len(body):
        # §18.3: "If the transport packet ends before the end of the message body, this is considered
        # an error. [...] If the message is a request, the element SHOULD generate a 400".
        raise RemoteSipError(f"Content-Length {length} exceeds the {len(body)} body bytes received")
    if length is not None and length > MAX_BODY_BYTES:
        raise MessageTooLargeError("body too large")
    if isinstance(message, Request):
        if cseq.method != message.method:
            raise RemoteSipError(f"CSeq method {cseq.method!r} does not match {message.method!r}")
        message.max_forwards  # noqa: B018
        contacts = message.contacts
        if message.method != "REGISTER" and any(c.is_wildcard for c in contacts):
            raise RemoteSipError(f"wildcard Contact in {message.method}")
    return length


_VIEW_KEYS = frozenset(("via", "from", "to", "call-id", "cseq", "contact"))
_TAG_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_ANSWER_COPIES = (("From", "from"), ("To", "to"), ("Call-ID", "call-id"), ("CSeq", "cseq"))


def response_to(
    request: Request | Headers,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> Response:
    """Build a response per RFC 3261 §8.2.6: copy Via, From, To, Call-ID and CSeq; add a To tag.

    §8.2.6.2: "the To field of the response MUST equal that of the request" except that "the UAS
    MUST add a tag to the To header field in the response (with the exception of the 100 (Trying)
    response, in which a tag MAY be present)" — and never a second one. §8.2.6.1: "If there is a
    Timestamp header field in the request, it MUST be copied into" a 100 (Trying).

    ``request`` may be the ``partial`` headers of a :class:`RemoteSipError`, to answer a malformed
    request: then only Via is required and the other four are copied when present.

    Raises:
        LocalSipError: no Via to send the response along, or (for a :class:`Request`) one of
            From, To, Call-ID, CSeq missing.
    """
    is_partial = not isinstance(request, Request)
    source = request if isinstance(request, Headers) else request.headers
    out = Headers()
    vias = source.get_all("Via")
    if not vias:
        raise LocalSipError("cannot answer a request without Via")
    items, keys = out._items, out._keys
    for via in vias:
        items.append(("Via", via))
        keys.append("via")
    to_changed = False
    for name, key in _ANSWER_COPIES:
        value = source.get(name)
        if value is None:
            if is_partial:
                continue
            raise LocalSipError(f"cannot answer a request without {name}")
        if key == "to" and to_tag is not None and status != 100:
            try:
                to = source._to if source._to is not None else _view(_NAME_ADDR_PARSE, value)
            except RemoteSipError:
                to = None
            if to is not None and to.tag is None:
                # The value as received plus the tag, not re-serialised: RFC 4475 'badaspec' (spaces
                # inside <>) "when forming responses, they must not ignore the spaces".
                value = f"{value.strip()};tag={to_tag}"
                to_changed = True
                if _TAG_RE.fullmatch(to_tag):  # a token: the text parses to the To with the tag appended
                    tagged = to.with_param("tag", to_tag)
                    _remember(_NAME_ADDR_PARSE, value, tagged)
        items.append((name, value))
        keys.append(key)
    copied = len(keys)
    if status == 100:
        timestamp = source.get("Timestamp")
        if timestamp is not None:
            out.add("Timestamp", timestamp)
    for name, value in headers or ():
        out.add(name, value)
    if source._viewed and not any(key in _VIEW_KEYS for key in keys[copied:]):
        # The views of the values copied as they are hold for the response too (To: unless tagged here).
        out._viewed = True
        out._via, out._cseq, out._from, out._call_id = source._via, source._cseq, source._from, source._call_id
        out._vias = None if source._vias is None else list(source._vias)
        if not to_changed:
            out._to = source._to
    return Response(status=status, reason=reason or REASONS.get(status, "Unknown"), headers=out, body=body)
