"""The server configuration, typed and validated at start-up (pydantic).

One YAML file (see ``config/demo.yaml``) holds the node, SIP and HTTP listeners, trunks,
agents, queues, supervisors and where the IVR flows and prompts live. Every model refuses
unknown keys, so a typo is an error at start, not a silently ignored setting.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeConfig(_Model):
    name: str = "node1"
    site: str = Field(default="s1", pattern=r"^[a-z0-9]{1,16}$", description="site code in recording serials")
    drain_s: float = Field(default=10.0, ge=0, le=3600,
                           description="on SIGTERM, how long live calls may go on before they are hung up")
    timezone: str = Field(default="UTC", description="the site's IANA time zone (e.g. Asia/Shanghai): the day, "
                          "interval and schedule boundaries of reports, adherence and the pages' clocks")
    holidays: tuple[dt.date, ...] = Field(default=(), description="the site's holidays (local dates YYYY-MM-DD): "
                                          "not working days wherever working days are counted (QA's appeal "
                                          "filing window and decision deadline)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai or UTC)") from exc
        return value

    @field_validator("holidays")
    @classmethod
    def _distinct_days(cls, value: tuple[dt.date, ...]) -> tuple[dt.date, ...]:
        repeated = sorted({d for d in value if value.count(d) > 1})
        if repeated:
            raise ValueError(f"holidays repeat: {', '.join(d.isoformat() for d in repeated)}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The site's time zone."""
        return ZoneInfo(self.timezone)


_CODE = r"^[a-z0-9][a-z0-9_.-]{0,39}$"
_LANGUAGE_TAG = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"  # BCP 47 shape: en, zh-CN, pt-BR


class DeskCode(_Model):
    """One code a desktop offers, with its label: one text for every language, or one per language tag (the
    pages speak ``en`` and ``zh-CN``; other desktops may use other tags)."""

    code: str
    label: str | dict[str, str] | None = Field(default=None, description="the label, or {language tag: label}; "
                                               "none: the desktop's own label of the code, else the code")

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not re.fullmatch(_CODE, value):
            raise ValueError(f"code {value!r}: lower-case letters, digits, _ . - (1 to 40, starting with a letter "
                             f"or digit)")
        return value

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        if value is None:
            return value
        texts = {"*": value} if isinstance(value, str) else value
        if not texts:
            raise ValueError("label: give at least one language, e.g. {en: Lunch, zh-CN: 午餐}")
        for tag, text in texts.items():
            if tag != "*" and not re.fullmatch(_LANGUAGE_TAG, tag):
                raise ValueError(f"label: {tag!r} is not a language tag (like en, zh-CN)")
            if not text.strip() or len(text) > 40:
                raise ValueError(f"label{'' if tag == '*' else f' {tag}'}: 1 to 40 characters, not blank")
        return value

    def labels(self) -> dict[str, str]:
        """{language tag: label}; ``*`` for a label of every language; empty without a label."""
        return {"*": self.label} if isinstance(self.label, str) else dict(self.label or {})


class DeskConfig(_Model):
    """The codes offered to agents' desktops (in ``hello``'s ``site``): the reasons of not ready and the wrap-up
    dispositions, each a code or ``{code, label}`` with per-language labels. The node still accepts other codes
    from other clients."""

    pause_reasons: tuple[DeskCode, ...] = Field(
        default=tuple(DeskCode(code=c) for c in ("break", "lunch", "training", "meeting", "admin")),
        description="not-ready reason codes the desktop offers, in order: a code, or {code, label: text | "
                    "{language: text}}")
    dispositions: tuple[DeskCode, ...] = Field(
        default=tuple(DeskCode(code=c) for c in ("resolved", "follow_up", "billing", "sales", "complaint",
                                                  "wrong_number", "other")),
        description="wrap-up disposition codes the desktop offers, in order: a code, or {code, label}")

    @field_validator("pause_reasons", "dispositions", mode="before")
    @classmethod
    def _plain_codes(cls, value: object) -> object:
        """A plain string is a code without a label."""
        if isinstance(value, list | tuple):
            return [{"code": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("pause_reasons", "dispositions")
    @classmethod
    def _distinct(cls, value: tuple[DeskCode, ...]) -> tuple[DeskCode, ...]:
        codes = [v.code for v in value]
        if not codes:
            raise ValueError("offer at least one code")
        if len(set(codes)) != len(codes):
            raise ValueError(f"codes repeat: {sorted(c for c in set(codes) if codes.count(c) > 1)}")
        return value

    @staticmethod
    def codes_of(entries: tuple[DeskCode, ...]) -> tuple[str, ...]:
        return tuple(e.code for e in entries)

    @staticmethod
    def labels_of(entries: tuple[DeskCode, ...]) -> dict[str, dict[str, str]]:
        """{code: {language tag: label}} of the entries that have a label."""
        return {e.code: e.labels() for e in entries if e.label is not None}


class LoggingConfig(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"
    redact_caller_numbers: bool = False


class LockoutConfig(_Model):
    max_failures: int = Field(default=5, ge=1)
    window_s: float = Field(default=60.0, gt=0)
    lockout_s: float = Field(default=300.0, gt=0)


class TlsConfig(_Model):
    """A certificate and its private key (PEM files; paths relative to the working directory, like
    ``data_dir``). Unset on a listener that uses TLS: the node makes a self-signed pair for its bind
    address in ``<data_dir>/tls/`` (for local use: phones must be told to accept it)."""

    cert_file: str
    key_file: str


class SipConfig(_Model):
    bind: str = "127.0.0.1"
    port: int = Field(default=5060, ge=0, le=65535)
    transports: tuple[Literal["udp", "tcp", "tls"], ...] = ("udp", "tcp")
    tls_port: int = Field(default=5061, ge=0, le=65535, description="SIP over TLS (sips:), when 'tls' is in "
                          "transports")
    tls: TlsConfig | None = Field(default=None, description="the SIP TLS certificate; unset: self-signed, made "
                                  "in data_dir")
    realm: str = "cti.local"
    user_agent: str = "cti-server"
    nonce_ttl_s: float = Field(default=300.0, gt=0)
    # One WWW-Authenticate per entry, in this order (RFC 8760 §2.4: most preferred first). MD5 alone by
    # default: baresip 1.0 gives up on a 401 that carries any SHA-256 challenge (docs/sip-auth.md).
    digest_algorithms: tuple[Literal["MD5", "SHA-256"], ...] = Field(
        default=("MD5",), min_length=1, description="digest algorithms offered in a 401, most preferred first")
    lockout: LockoutConfig = LockoutConfig()
    min_expires: int = Field(default=60, ge=1)
    max_expires: int = Field(default=3600, ge=1)
    default_expires: int = Field(default=3600, ge=1)
    tcp_idle_timeout_s: float = Field(default=600.0, gt=0)

    @field_validator("bind")
    @classmethod
    def _ip(cls, value: str) -> str:
        ipaddress.ip_address(value)
        return value

    @field_validator("digest_algorithms")
    @classmethod
    def _once_each(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each digest algorithm may be listed once")
        return value

    @model_validator(mode="after")
    def _expires_order(self) -> SipConfig:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need min_expires <= default_expires <= max_expires")
        return self


class MediaConfig(_Model):
    rtp_port_min: int = Field(default=20000, ge=1024, le=65534)
    rtp_port_max: int = Field(default=29999, ge=1025, le=65535)
    rtp_timeout_s: float = Field(default=30.0, gt=0)
    record_calls: bool = True
    srtp: SrtpSetting = Field(
        default="optional", description="SRTP (SDES, RFC 4568) on legs whose SIP transport is TLS: off, optional "
        "(answer offers with keys, offer keys best-effort) or mandatory (488 to a TLS offer without keys); never on "
        "plain UDP/TCP legs, where the keys would travel in clear (docs/tls.md)")

    @model_validator(mode="after")
    def _range(self) -> MediaConfig:
        if self.rtp_port_min >= self.rtp_port_max:
            raise ValueError("rtp_port_min must be below rtp_port_max")
        return self


class LimitsConfig(_Model):
    """Call admission of the node (cti/node/admission.py): past max_calls a new call gets 503 + Retry-After; past
    the rate, or while the node is overloaded, 503 alone (only that call goes elsewhere)."""

    max_calls: int = Field(default=0, ge=0, description="live calls on the node; 0: no limit")
    max_calls_per_second: float = Field(default=0.0, ge=0, description="new calls a second; 0: no limit")
    max_loop_lag_ms: float = Field(default=300.0, ge=0, le=60_000, description="refuse new calls (503) while the "
                                   "event loop runs this late for half a second in a row, until it is back within "
                                   "half of it (cti/node/admission.py); calls already up are kept; 0: off")


class HttpConfig(_Model):
    """The HTTP/WebSocket listener and its limits (cti/http_guard; docs/api.md "The HTTP listener")."""

    tls: TlsConfig | None = Field(default=None, description="serve HTTPS and WSS with this certificate; unset: "
                                  "plain HTTP (put a TLS proxy in front, or set it)")
    ws_replay_events: int = Field(default=100_000, ge=1, le=10_000_000, description="events the WebSocket gateway "
                                  "keeps for clients resuming with ?since= (kept compressed, about 0.1 KB each)")
    ws_replay_s: float = Field(default=600.0, gt=0, le=86_400, description="the oldest event kept for resuming")
    ws_replay_bytes: int = Field(default=16 * 2**20, ge=2**20, le=2**31, description="bytes the WebSocket "
                                 "gateway's replay window may hold (events kept compressed, about 0.1 KB each)")
    bind: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_connections: int = Field(default=4096, ge=1, le=1_000_000,
                                 description="open connections (WebSocket ones included); past it 503 and closed")
    backlog: int = Field(default=1024, ge=1, le=65535, description="connections the kernel queues before they are "
                                                                    "accepted (capped by net.core.somaxconn)")
    max_connections_per_host: int = Field(default=0, ge=0, description="open connections from one IP address; "
                                                                       "0: no limit (a reverse proxy is one host)")
    idle_timeout_s: float = Field(default=15.0, gt=0, le=3600,
                                  description="a connection with no request under way is closed after this")
    header_timeout_s: float = Field(default=10.0, gt=0, le=600,
                                    description="a request head must be complete this long after its first byte")
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600,
                                  description="a request body must be complete this long after it is first read")
    send_timeout_s: float = Field(default=120.0, gt=0, le=3600,
                                  description="an answer must be taken by the client within this; else closed")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024**3, description="any request body")
    max_json_bytes: int = Field(default=64 * 1024, ge=16, le=1024**3, description="a JSON request body")
    max_json_depth: int = Field(default=32, ge=1, le=200, description="nesting of arrays and objects in a JSON body")
    max_header_line_bytes: int = Field(default=8190, ge=256, le=65536,
                                       description="the request line and each header field")
    max_headers: int = Field(default=64, ge=8, le=1024, description="header fields in one request")
    refusal_log_per_s: float = Field(default=1.0, gt=0, le=10_000,
                                     description="refused requests and connections logged a second (sustained)")
    refusal_log_burst: int = Field(default=20, ge=1, le=100_000,
                                   description="refusal lines logged at once before refusal_log_per_s applies")

    @model_validator(mode="after")
    def _json_within_body(self) -> HttpConfig:
        if self.max_json_bytes > self.max_body_bytes:
            raise ValueError("max_json_bytes must not exceed max_body_bytes")
        return self


SrtpSetting = Literal["off", "optional", "mandatory"]
"""``media.srtp`` and its per-trunk / per-agent overrides (docs/tls.md, cti/call/srtp.py)."""


class TrunkConfig(_Model):
    name: str
    allow: tuple[str, ...] = Field(default=(), description="source addresses or CIDR blocks")
    username: str | None = None
    password: str | None = None
    numbers: dict[str, str] = Field(default_factory=dict, description="dialled number -> IVR flow name")
    # Play the IVR as early media (183 Session Progress) and answer (200) only when an agent answers;
    # the caller is then not billed for the time in the IVR and queue. Off: answer at once.
    early_media: bool = False
    # Live calls from this trunk at most (the channels bought from the carrier); past it 486 Busy Here.
    max_calls: int = Field(default=0, ge=0, description="0: no limit")
    srtp: SrtpSetting | None = Field(default=None, description="media.srtp for calls from this trunk; unset: "
                                     "media.srtp")

    @field_validator("allow")
    @classmethod
    def _cidrs(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            ipaddress.ip_network(value, strict=False)
        return values

    @model_validator(mode="after")
    def _some_auth(self) -> TrunkConfig:
        if not self.allow and not (self.username and self.password):
            raise ValueError("a trunk needs an 'allow' list, or username and password, or both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class AgentConfig(_Model):
    id: str
    name: str = ""
    password: str = Field(min_length=4)
    skills: dict[str, int] = Field(default_factory=dict)
    team: str | None = None
    # The phone rules (FreeSWITCH mod_callcenter's agent model; docs/acd.md "Configuration").
    no_answer_delay_s: float = Field(default=0.0, ge=0, le=86_400, description="after the phone did not answer an "
                                     "offer, no call is offered to the agent for this long")
    reject_delay_s: float = Field(default=0.0, ge=0, le=86_400, description="the same after the phone declined "
                                  "an offer")
    busy_delay_s: float = Field(default=0.0, ge=0, le=86_400, description="the same after the phone answered busy "
                                "(486/600)")
    max_no_answer: int = Field(default=0, ge=0, le=1000, description="this many no-answers in a row put the agent "
                               "not ready with max_no_answer_reason; 0: never")
    max_no_answer_reason: str = Field(default="break", description="a desk.pause_reasons code")
    srtp: SrtpSetting | None = Field(default=None, description="media.srtp for this agent's phone (e.g. mandatory "
                                     "for a phone set to SRTP only, which refuses RTP/AVP offers); unset: media.srtp")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError("agent id may hold letters, digits and _ . - only")
        return value

    @field_validator("skills")
    @classmethod
    def _levels(cls, skills: dict[str, int]) -> dict[str, int]:
        for skill, level in skills.items():
            if not 1 <= level <= 10:
                raise ValueError(f"skill {skill!r}: level must be 1..10")
            if skill.startswith("agent:"):
                raise ValueError(f"skill {skill!r}: names starting with 'agent:' are reserved (transfers to an agent)")
        return skills


_OVERFLOW_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # action -> (required, allowed) fields besides after_s
    "relax_level": (set(), {"relax_by"}),
    "add_skill": ({"skill"}, {"skill", "min_level"}),
    "add_queue": ({"queue"}, {"queue"}),
    "to_flow": ({"flow"}, {"flow"}),
    "voicemail": ({"flow"}, {"flow"}),
}


class OverflowRuleConfig(_Model):
    """One overflow rule of a queue: once a call has waited ``after_s`` there, widen who may take it
    (relax_level, add_skill, add_queue) or take it out of the queue into an IVR flow (to_flow; voicemail:
    a flow with a voicemail node). docs/acd.md "Overflow"."""

    after_s: float = Field(ge=0, le=86_400, description="seconds since the call entered the queue")
    action: Literal["relax_level", "add_skill", "add_queue", "to_flow", "voicemail", "callback"]
    relax_by: int | None = Field(default=None, ge=1, le=9, description="relax_level: levels taken off every "
                                 "minimum (default 1)")
    skill: str | None = Field(default=None, min_length=1, description="add_skill: agents of the queue holding it")
    min_level: int | None = Field(default=None, ge=1, le=10, description="add_skill: at this level at least "
                                  "(default 1)")
    queue: str | None = Field(default=None, min_length=1, description="add_queue: members of that queue too")
    flow: str | None = Field(default=None, min_length=1, description="to_flow, voicemail: the IVR flow the call "
                             "goes on in")

    @model_validator(mode="after")
    def _fields_of_action(self) -> OverflowRuleConfig:
        if self.action == "callback":
            raise ValueError("action 'callback' is not available: the node has no call-back store or dialler "
                             "(IVR callback nodes are refused too); use to_flow to a flow that tells the caller "
                             "what to do, or voicemail")
        required, allowed = _OVERFLOW_FIELDS[self.action]
        given = {name for name in ("relax_by", "skill", "min_level", "queue", "flow")
                 if getattr(self, name) is not None}
        missing, extra = sorted(required - given), sorted(given - allowed)
        if missing:
            raise ValueError(f"action {self.action!r} needs {', '.join(missing)}")
        if extra:
            raise ValueError(f"action {self.action!r} takes no {', '.join(extra)}")
        return self

    @property
    def exits(self) -> bool:
        """True when the rule takes the call out of the queue."""
        return self.action in ("to_flow", "voicemail")


class QueueExitConfig(_Model):
    """Where a call goes when it meets one of its queue's hard limits (``on_max_wait`` after ``max_wait_s``,
    ``on_full`` past ``max_size``): the exits of the overflow rules, without ``after_s``. ``to_flow``: the caller
    goes on in that IVR flow; ``voicemail``: in that flow, which must have a voicemail node. docs/acd.md "Limits"."""

    action: Literal["to_flow", "voicemail"]
    flow: str = Field(min_length=1, description="the IVR flow the call goes on in")


class QueueConfig(_Model):
    name: str
    skills: dict[str, int] = Field(default_factory=dict, description="required skill -> minimum level")
    strategy: Literal["longest_idle", "least_calls", "best_skill", "round_robin", "random"] = "longest_idle"
    ring_timeout_s: float = Field(default=15.0, gt=0)
    wrap_up_s: float = Field(default=30.0, ge=0)
    max_wait_s: float | None = Field(default=None, gt=0, description="longest wait, then the call leaves for "
                                     "on_max_wait (required with it)")
    max_size: int | None = Field(default=None, ge=1, description="calls waiting or ringing; one more leaves at once "
                                 "for on_full (required with it)")
    on_max_wait: QueueExitConfig | None = Field(default=None, description="where a call goes after max_wait_s")
    on_full: QueueExitConfig | None = Field(default=None, description="where a call goes when the queue holds "
                                            "max_size calls")
    sl_threshold_s: float = Field(default=20.0, gt=0)
    sl_target: float = Field(default=0.8, ge=0, le=1)
    sl_formula: Literal["answered_only", "abandons_negative", "abandons_after_t_negative", "abandons_in_t_positive",
                        "short_abandon_positive"] = Field(
        default="abandons_after_t_negative", description="the headline service-level variant (domain.md §1.2)")
    include_flowouts: bool = Field(default=False, description="flow-outs join the SL denominator")
    short_abandon_s: float = Field(default=5.0, ge=0,
                                   description="abandons quicker than this are short (<= sl_threshold_s)")
    record: bool = True
    priority_aging_s: float | None = Field(default=None, gt=0, le=86_400, description="a waiting call gains one "
                                           "priority step every this many seconds; unset: no aging")
    overflow: tuple[OverflowRuleConfig, ...] = Field(default=(), description="overflow rules, applied in after_s "
                                                     "order (docs/acd.md)")
    no_answer_reason: str | None = Field(default="no answer", description="the not-ready reason of an agent whose "
                                         "phone did not answer an offer (a desk.pause_reasons code); null: ready")
    reject_reason: str | None = Field(default="rejected", description="the same after a declined or busy offer")

    @model_validator(mode="after")
    def _short_within_t(self) -> QueueConfig:
        if self.short_abandon_s > self.sl_threshold_s:
            raise ValueError(f"short_abandon_s ({self.short_abandon_s:g}) must not exceed sl_threshold_s "
                             f"({self.sl_threshold_s:g})")
        return self

    @model_validator(mode="after")
    def _limits_have_exits(self) -> QueueConfig:
        # A hard limit never just hangs up (docs/acd.md "Limits"): each comes with the place the caller goes on to.
        for limit, value, exit_key, exit_ in (("max_wait_s", self.max_wait_s, "on_max_wait", self.on_max_wait),
                                              ("max_size", self.max_size, "on_full", self.on_full)):
            if value is not None and exit_ is None:
                raise ValueError(f"queue {self.name!r}: {limit} needs {exit_key} ({{action: to_flow, flow: ...}} or "
                                 f"{{action: voicemail, flow: ...}}): a caller at the limit is never just hung up")
            if value is None and exit_ is not None:
                raise ValueError(f"queue {self.name!r}: {exit_key} without {limit} is never used")
        return self

    def overflow_in_order(self) -> list[tuple[int, OverflowRuleConfig]]:
        """The overflow rules with their index in the file, by ``after_s`` (stable: equal times keep file order)."""
        return sorted(enumerate(self.overflow), key=lambda item: item[1].after_s)


class ReportTargets(_Model):
    """Targets of a queue or team; the report shows each figure's gap to its target (docs/reports.md)."""

    service_level: float | None = Field(default=None, gt=0, le=1, description="at least (default: the queue's "
                                        "sl_target)")
    answer_rate: float | None = Field(default=None, ge=0, le=1, description="at least")
    abandon_rate: float | None = Field(default=None, ge=0, le=1, description="at most")
    asa_s: float | None = Field(default=None, ge=0, description="at most")
    aht_s: float | None = Field(default=None, gt=0, description="at most")
    occupancy: float | None = Field(default=None, gt=0, le=1, description="at least")
    utilisation: float | None = Field(default=None, gt=0, le=1, description="at least")

    def given(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ReportsConfig(_Model):
    """KPI reports (docs/reports.md)."""

    max_range_days: int = Field(default=93, ge=1, le=3700, description="longest report range a request may ask")
    repeat_window_days: float = Field(default=7.0, gt=0, le=90, description="repeat-call window W (domain.md §1.7)")
    exclude_short_abandons: bool = Field(default=True, description="short abandons leave abandoned and offered")
    ring_cycle_s: float = Field(default=6.0, gt=0, le=60, description="one ring cadence, for 'answered within N rings'")
    answer_within_rings: int = Field(default=3, ge=1, le=20)
    queue_targets: dict[str, ReportTargets] = Field(default_factory=dict, description="queue name -> targets")
    team_targets: dict[str, ReportTargets] = Field(default_factory=dict, description="team name -> targets")


class SupervisorConfig(_Model):
    id: str
    name: str = ""
    password: str = Field(min_length=4)
    queues: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()


class WebhookConfig(_Model):
    """A CRM endpoint that receives signed event POSTs (docs/webhooks.md)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    url: str = Field(pattern=r"^https?://")
    secret: str = Field(min_length=16)
    events: tuple[str, ...] = ("*",)
    max_attempts: int = Field(default=10, ge=1)
    timeout_s: float = Field(default=10.0, gt=0)


class WebhookRetryConfig(_Model):
    base_delay_s: float = Field(default=1.0, gt=0)
    max_delay_s: float = Field(default=300.0, gt=0)


class MqttSettings(_Model):
    """The MQTT bridge (off by default): every event to ``<prefix>/<node>/<type as a path>``."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    prefix: str = "cti"
    username: str | None = None
    password: str | None = None
    buffer_size: int = Field(default=10_000, ge=1)
    qos: Literal[0, 1, 2] = 1


class AdherenceRuleConfig(_Model):
    """One extra rule of the adherence table (domain.md §3.1): planned ``activity`` x ACD ``state`` [x ``reason``]."""

    activity: Literal["phone", "break", "lunch", "meeting", "training", "offline_work"]
    state: Literal["logged_out", "available", "reserved", "ringing", "on_call", "held", "wrap_up", "paused"]
    reason: str | None = Field(default=None, min_length=1)
    verdict: Literal["in", "out", "neutral"]


class AdherenceConfig(_Model):
    """Schedule adherence (docs/adherence.md); defaults are domain.md §6."""

    tolerance_min: float = Field(default=5.0, ge=0, le=60, description="minutes forgiven (grace) or ignored")
    tolerance_mode: Literal["grace", "min_duration"] = "grace"
    conformance_window: Literal["shift", "day"] = "shift"
    exceptions_count_as_productive: bool = False
    rules: tuple[AdherenceRuleConfig, ...] = Field(default=(), description="added to (or overriding) the defaults")
    report_max_days: int = Field(default=92, ge=1, le=3660, description="longest report range (400 beyond)")
    gaming_session_max_min: float = Field(default=10.0, gt=0, le=240,
                                          description="a logged-in session this short counts toward gaming")
    gaming_repeats: int = Field(default=3, ge=2, le=100,
                                description="short sessions starting within gaming_window_min of the same time of "
                                            "day that flag an agent")
    gaming_window_min: float = Field(default=15.0, gt=0, le=180)
    key_minority_share: float = Field(default=0.8, gt=0, le=1,
                                      description="the key minority: the fewest agents carrying this share of the "
                                                  "SL cost")


class StorageConfig(_Model):
    """Where CDRs, queue legs, agent states, recordings and the outbox live (docs/storage.md).

    ``url`` None: the SQLite file ``<data_dir>/cti.sqlite3``. A ``postgresql://`` URL: PostgreSQL
    (``pip install 'cti-server[postgres]'``); every node of a cluster may share one database.
    """

    url: str | None = Field(default=None, pattern=r"^postgres(ql)?://", repr=False,
                            description="postgresql://user:password@host:5432/dbname (the password is never logged)")
    pool_size: int = Field(default=10, ge=1, le=1000, description="PostgreSQL connections per node")
    fatal_after_s: float = Field(default=15.0, gt=0, le=600,
                                 description="the store failing (or its file gone) this long stops the node "
                                             "(a node that was itself stalled does not count it)")


class QaConfig(_Model):
    """Quality assurance (docs/qa.md)."""

    appeal_window_working_days: int = Field(default=3, ge=1, le=30, description="an agent may appeal an evaluation "
                                            "for this many working days (Monday to Friday, site time) after it "
                                            "is published")
    appeal_decision_working_days: int = Field(default=5, ge=1, le=30, description="the appeal panel decides within "
                                              "this many working days of the team leader's admission; after it the "
                                              "supervisor seat closes the appeal")
    calibration_tolerance: float = Field(default=5.0, ge=0, le=100, description="points on the 100 scale from the "
                                         "reference score beyond which a calibration report flags an evaluator")


class ServerConfig(_Model):
    """The whole file. Cross-references (queue names, flow names) are checked after loading."""

    node: NodeConfig = NodeConfig()
    logging: LoggingConfig = LoggingConfig()
    sip: SipConfig = SipConfig()
    media: MediaConfig = MediaConfig()
    limits: LimitsConfig = LimitsConfig()
    http: HttpConfig = HttpConfig()
    data_dir: str = "./var"
    storage: StorageConfig = StorageConfig()
    qa: QaConfig = QaConfig()
    flows_dir: str = "flows"
    prompts_dir: str = "prompts"
    operator_token: str | None = Field(default=None, min_length=16)
    # Signs the WebSocket/API tokens the server issues; random per start when unset (tokens then end with it).
    token_secret: str | None = Field(default=None, min_length=32)  # HS256 key: RFC 7518 §3.2
    token_ttl_s: float = Field(default=12 * 3600.0, gt=0)
    webhooks: tuple[WebhookConfig, ...] = ()
    webhook_retry: WebhookRetryConfig = WebhookRetryConfig()
    mqtt: MqttSettings = MqttSettings()
    adherence: AdherenceConfig = AdherenceConfig()
    vip_numbers: tuple[str, ...] = ()
    trunks: tuple[TrunkConfig, ...] = ()
    agents: tuple[AgentConfig, ...] = ()
    queues: tuple[QueueConfig, ...] = ()
    supervisors: tuple[SupervisorConfig, ...] = ()
    reports: ReportsConfig = ReportsConfig()
    desk: DeskConfig = DeskConfig()

    @model_validator(mode="after")
    def _report_targets(self) -> ServerConfig:
        queues = {q.name for q in self.queues}
        teams = {a.team for a in self.agents if a.team}
        unknown = sorted(set(self.reports.queue_targets) - queues)
        if unknown:
            raise ValueError(f"reports.queue_targets: unknown queue(s) {', '.join(unknown)}")
        unknown = sorted(set(self.reports.team_targets) - teams)
        if unknown:
            raise ValueError(f"reports.team_targets: no agent is in team(s) {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _unique(self) -> ServerConfig:
        for what, ids in (
            ("agent", [a.id for a in self.agents]),
            ("queue", [q.name for q in self.queues]),
            ("trunk", [t.name for t in self.trunks]),
            ("supervisor", [s.id for s in self.supervisors]),
        ):
            seen: set[str] = set()
            for ident in ids:
                if ident in seen:
                    raise ValueError(f"duplicate {what} {ident!r}")
                seen.add(ident)
        return self
