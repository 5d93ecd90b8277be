// The connection to the node: log in (POST /auth/login), one WebSocket (/ws, JSON frames), commands with replies,
// reconnect with back-off. A reconnect resumes with `?since=<seq>` of the last event seen (docs/websocket.md,
// "Resuming with since"): when the node replays what was missed (`hello.resumed`), the page keeps its view and the
// missed events follow as ordinary events; otherwise (first connection, `resync`) the new `hello` replaces the view.

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const COMMAND_TIMEOUT_MS = 10000;

export class CommandError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

/** POST /auth/login; resolves {token, expires_at, role, subject}; rejects CommandError(code). */
export async function login(role, id, password) {
  let response;
  try {
    response = await fetch("/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ role, id, password }),
    });
  } catch {
    throw new CommandError("unreachable", "the server cannot be reached");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new CommandError(body?.error?.code || `http_${response.status}`, body?.error?.message || "");
  return body;
}

/** Where a page keeps its token for this browser tab (a reload stays logged in; closing the tab forgets it). */
export const saved = {
  get(role) {
    try { return JSON.parse(sessionStorage.getItem(`cti.session.${role}`) || "null"); } catch { return null; }
  },
  put(role, session) { sessionStorage.setItem(`cti.session.${role}`, JSON.stringify(session)); },
  drop(role) { sessionStorage.removeItem(`cti.session.${role}`); },
};

/**
 * One WebSocket with reconnect. Callbacks: onHello(data), onEvent(envelope), onStatus(status) where status is
 * "connecting" | "online" | "reconnecting", onEnded(code) when the token is no longer accepted.
 */
export class Connection {
  constructor(token, { onHello, onEvent, onStatus, onEnded }) {
    this.token = token;
    this.handlers = { onHello, onEvent, onStatus, onEnded };
    this.pending = new Map();
    this.nextId = 1;
    this.delay = BACKOFF_MIN_MS;
    this.ws = null;
    this.closed = false;
    this.timer = null;
    this.seq = null;  // the node's seq of the last event (or hello) this page has applied
  }

  open() {
    if (this.closed) return;
    this.handlers.onStatus?.(this.ws === null ? "connecting" : "reconnecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const since = this.seq === null ? "" : `&since=${this.seq}`;
    const ws = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(this.token)}${since}`,
      ["cti.json"]);
    this.ws = ws;
    let opened = false;
    ws.addEventListener("open", () => { opened = true; this.delay = BACKOFF_MIN_MS; });
    ws.addEventListener("message", (msg) => this.receive(msg.data));
    ws.addEventListener("close", (event) => {
      this.failPending();
      if (this.closed || ws !== this.ws) return;
      if (event.code === 4001) { this.end("token_expired"); return; }
      this.handlers.onStatus?.("reconnecting");
      if (opened) { this.retry(); return; }
      this.checkToken();  // never opened: a token the node refuses never will be accepted; ask why
    });
  }

  /** A WebSocket that fails before opening tells the page nothing; the same URL without an upgrade answers
   *  401 for a refused token and 400 (not_websocket) for a good one (docs/websocket.md). */
  async checkToken() {
    try {
      const response = await fetch(`/ws?token=${encodeURIComponent(this.token)}`);
      if (response.status === 401 || response.status === 403) {
        const body = await response.json().catch(() => ({}));
        this.end(body?.error?.code || "token_refused");
        return;
      }
    } catch { /* the node is away: keep trying */ }
    this.retry();
  }

  retry() {
    const wait = this.delay * (0.5 + Math.random() / 2);
    this.delay = Math.min(BACKOFF_MAX_MS, this.delay * 2);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), wait);
  }

  end(code) {
    this.close();
    this.handlers.onEnded?.(code);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.failPending();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
  }

  receive(text) {
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    if (frame.type === "hello") {
      this.handlers.onStatus?.("online");
      if (Number.isInteger(frame.data?.seq)) this.seq = frame.data.seq;
      if (!frame.data?.resumed) this.handlers.onHello?.(frame.data);
    } else if (frame.type === "resync") {
      // the missed events are gone; the hello just before this frame has already replaced the view
    } else if (frame.type === "reply") {
      const waiter = this.pending.get(frame.id);
      if (!waiter) return;
      this.pending.delete(frame.id);
      clearTimeout(waiter.timer);
      if (frame.ok) waiter.resolve(frame.data);
      else waiter.reject(new CommandError(frame.error?.code || "error", frame.error?.message || ""));
    } else if (frame.type === "error") {
      console.warn("cti: error frame", frame.error);
    } else if (typeof frame.type === "string" && frame.data) {
      if (Number.isInteger(frame.seq)) this.seq = frame.seq;
      this.handlers.onEvent?.(frame);
    }
  }

  /** Send a command; resolves the reply's data, rejects CommandError(code). */
  command(command, args = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new CommandError("offline", "not connected"));
    }
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CommandError("timeout", "no answer"));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ type: "command", id, command, args }));
    });
  }

  failPending() {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new CommandError("offline", "connection lost"));
    }
    this.pending.clear();
  }
}
