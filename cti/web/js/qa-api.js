// The QA admin API (/api/v1/qa, docs/qa.md) with the page's login token: JSON in and out, refusals as
// CommandError(code) like the WebSocket commands, so the pages report both the same way.
import { CommandError } from "./conn.js";

export class QaApi {
  constructor(token) { this.token = token; }

  async call(method, path, body = undefined) {
    let response;
    try {
      response = await fetch(`/api/v1/qa${path}`, {
        method, headers: { Authorization: `Bearer ${this.token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch {
      throw new CommandError("unreachable", "the server cannot be reached");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const problems = (data?.error?.problems || []).join("; ");
      throw new CommandError(data?.error?.code || `http_${response.status}`,
        [data?.error?.message, problems].filter(Boolean).join(" — "));
    }
    return data;
  }

  get(path) { return this.call("GET", path); }
  post(path, body = {}) { return this.call("POST", path, body); }

  /** The URL an <audio> element plays (it cannot send headers: the token goes in the query). */
  audioUrl(serial, channel) {
    return `/api/v1/qa/recordings/${encodeURIComponent(serial)}/audio?channel=${channel}` +
      `&token=${encodeURIComponent(this.token)}`;
  }
}
