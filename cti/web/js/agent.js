// The agent desktop (/agent). State flows one way: hello / events / command replies -> `store` -> render().
import { h, replace, $ } from "./dom.js";
import { clock, codeLabel, dateTime, duration, elapsed, learnSkew, remaining, serverNow, site, tick } from "./format.js";
import { applyText, onLangChange, t } from "./i18n.js";
import { act, bootPage, panel } from "./shell.js";
import { CALL_STATES, PAUSE_REASONS, reasonLabel, stateBadge } from "./states.js";
import "./phone-i18n.js";
import { createPhone } from "./phone.js";

const MAX_NOTES = 2000;  // what end_wrap_up accepts (docs/websocket.md)
const DISPOSITIONS = ["resolved", "follow_up", "billing", "sales", "complaint", "wrong_number", "other"];
// The codes offered come from hello's site (config desk.*); the page's own lists before that. Labels: the
// configured one in the page's language, else the page's own, else the code as it is (format.js codeLabel).
const dispositions = () => site.dispositions || DISPOSITIONS;
const pauseReasons = () => site.pause_reasons || PAUSE_REASONS;

/** A disposition code in words: its configured label, the page's own, or the code itself. */
function dispositionLabel(code) {
  return codeLabel(site.disposition_labels, code, DISPOSITIONS.includes(code) ? t(`disp.${code}`) : null);
}

const store = { me: null, call: null, contacts: null, notices: new Map(), supervision: null, message: null };
let conn = null;

const statePanel = panel("state-panel", "agent.my_state", "panel-state");
const callPanel = panel("call-panel", "agent.call", "panel-call");
const noticePanel = panel("notice-panel", "agent.notices", "panel-notices");
// The call panel's "answer on your phone" hint gives way to the phone panel's own ringing line.
const phone = createPhone({ getConn: () => conn, onChange: () => { if (store.call?.phase === "offered") renderCall(); } });

function report(text) {
  store.message = text;
  renderMessage();
}

function renderMessage() {
  const area = $("#message");
  replace(area, store.message ? h("p", {}, store.message) : null);
}

// -- model -----------------------------------------------------------------------------------------------------
function phaseFromState(state) {
  if (state === "ringing" || state === "reserved") return "offered";
  if (state === "on_call") return "connected";
  if (state === "held") return "held";
  if (state === "wrap_up") return "ended";
  return null;
}

function onHello(data) {
  store.me = data.state;
  learnSkew(data.state);
  $("#who").textContent = data.state?.name ? `${data.state.name} (${data.subject})` : data.subject;
  const call = data.call;
  store.call = call ? { ...call, phase: phaseFromState(store.me?.state) || "connected" } : keepEndedCall();
  for (const notice of data.notices || []) upsertNotice(notice);
  if (call) loadContacts(call.call_id);
  render();
  phone.onHello();
}

/** A reconnect during wrap-up keeps the ended call on screen (hello has no call then). */
function keepEndedCall() {
  return store.me?.state === "wrap_up" && store.call ? { ...store.call, phase: "ended" } : null;
}

function upsertNotice(notice) {
  const known = store.notices.get(notice.notice_id);
  store.notices.set(notice.notice_id, { ...known, ...notice, read_at: known?.read_at ?? null,
    ack_at: known?.ack_at ?? null });
}

function onEvent(env) {
  const d = env.data;
  switch (env.type) {
    case "agent.state_changed":
      store.me = { ...store.me, state: d.state, reason: d.reason, call_id: d.call_id, since: env.ts,
        wrap_up_s: d.wrap_up_s ?? null };
      if (!CALL_STATES.has(d.state) && store.call && store.call.phase === "ended") store.call = null;
      if (d.state === "held" && store.call) store.call.phase = "held";
      if (d.state === "on_call" && store.call) store.call.phase = "connected";
      break;
    case "agent.logged_in":
      store.me = { ...store.me, queues: d.queues, skills: d.skills };
      break;
    case "agent.logged_out":
      store.me = { ...store.me, state: "logged_out", reason: d.reason, since: env.ts };
      break;
    case "call.offered":
      store.call = { ...d, phase: "offered", offered_at: env.ts };
      loadContacts(d.call_id);
      break;
    case "call.answered":
      if (store.call?.call_id === d.call_id) {
        Object.assign(store.call, { phase: "connected", answered_at: env.ts, wait_seconds: d.wait_seconds,
          recording_serial: d.recording_serial ?? store.call.recording_serial });
      }
      break;
    case "call.ended":
      if (store.call?.call_id === d.call_id) {
        Object.assign(store.call, { phase: "ended", ended_at: env.ts, end_reason: d.reason,
          talk_seconds: d.talk_seconds });
      }
      break;
    case "call.transferred":
      if (store.call?.call_id === d.call_id) {
        Object.assign(store.call, { phase: "ended", ended_at: env.ts, end_reason: "transferred",
          transferred_to: d.to_agent ? `agent:${d.to_agent}` : `queue:${d.queue}` });
      }
      break;
    case "notice.broadcast":
      upsertNotice(d);
      break;
    case "supervision.started":
    case "supervision.changed":
      store.supervision = { supervisor_id: d.supervisor_id, mode: d.mode, call_id: d.call_id };
      break;
    case "supervision.ended":
      store.supervision = null;
      break;
    case "phone.state_changed":
      phone.onEvent(d);
      return;
    default:
      return;
  }
  render();
}

async function command(button, name, args = {}) {
  const reply = await act(button, conn.command(name, args), report);
  if (reply && reply.agent_id) {
    store.me = { ...store.me, ...reply };
    learnSkew(reply);
    store.message = null;
    render();
  }
  return reply;
}

// -- views -----------------------------------------------------------------------------------------------------
function renderState() {
  const me = store.me;
  if (!me) { replace(statePanel.body); return; }
  const state = me.state;
  const loggedOut = state === "logged_out";
  const inCall = CALL_STATES.has(state);
  const reason = h("select", { id: "pause-reason", "data-key": "pause-reason" },
    pauseReasons().map((r) => h("option", { value: r }, reasonLabel(r))));
  const buttons = loggedOut
    ? [h("button", { type: "button", class: "button primary", "data-key": "login-ready",
        onclick: (e) => command(e.currentTarget, "login", { ready: true }) }, t("agent.login_ready")),
       h("button", { type: "button", class: "button", "data-key": "login",
        onclick: (e) => command(e.currentTarget, "login", { ready: false }) }, t("agent.login"))]
    : [state === "available" ? null : h("button", { type: "button", class: "button primary", "data-key": "ready",
        disabled: inCall, onclick: (e) => command(e.currentTarget, "ready") }, t("agent.ready")),
       h("div", { class: "pause" },
         h("label", { for: "pause-reason" }, t("agent.reason")),
         h("div", { class: "inline-field" }, reason,
           h("button", { type: "button", class: "button", "data-key": "not-ready", disabled: inCall,
             onclick: (e) => command(e.currentTarget, "not_ready", { reason: reason.value }) },
             t(state === "paused" ? "agent.change_reason" : "agent.not_ready")))),
       h("button", { type: "button", class: "button secondary", "data-key": "logout", disabled: inCall,
        onclick: (e) => command(e.currentTarget, "logout") }, t("agent.logout"))];
  if (state === "paused" && pauseReasons().includes(me.reason)) reason.value = me.reason;
  replace(statePanel.body,
    h("div", { class: "state-line" }, stateBadge(state, me.reason, { large: true }),
      h("span", { class: "time-in-state" }, h("span", { class: "vh" }, t("agent.time_in_state")),
        h("span", { "data-since": me.since ?? "" }, elapsed(me.since)))),
    inCall ? h("p", { class: "hint" }, t("agent.state_after_call")) : h("div", { class: "actions" }, buttons),
    h("p", { class: "meta" }, t("agent.queues"), ": ", (me.queues || []).join(", ") || "—"));
}

function table(captionKey, entries) {
  if (!entries.length) return h("p", { class: "meta" }, t(captionKey), ": —");
  return h("table", { class: "kv" }, h("caption", {}, t(captionKey)),
    h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v)))));
}

function flatten(obj, prefix = "") {
  const out = [];
  for (const [key, value] of Object.entries(obj || {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === "object" && !Array.isArray(value)) out.push(...flatten(value, name));
    else out.push([name, Array.isArray(value) ? value.join(", ") : String(value)]);
  }
  return out;
}

function renderCall() {
  const call = store.call;
  const me = store.me;
  if (!call) {
    const waitingKey = me?.state === "available" ? "agent.waiting_for_calls" : "agent.no_call";
    replace(callPanel.body, h("p", { class: "empty" }, t(waitingKey)));
    return;
  }
  const phaseKey = { offered: "call.phase_offered", connected: "call.phase_connected", held: "call.phase_held",
    ended: "call.phase_ended" }[call.phase] || "call.phase_connected";
  const live = call.phase === "connected" || call.phase === "held";
  const facts = [
    [t("call.caller_name"), call.caller_name || "—"],
    [t("call.dialled"), call.dialled_number || "—"],
    [t("call.queue"), call.queue || "—"],
    [t("call.wait"), Number.isFinite(call.wait_seconds) ? duration(call.wait_seconds) : "—"],
    [t("call.recording"), call.recording_serial || "—"],
  ];
  const pop = h("div", { class: "screen-pop", role: "region", "aria-label": t("call.screen_pop") },
    h("div", { class: "caller-line" },
      h("span", { class: "caller-number" }, h("span", { class: "vh" }, t("call.caller_number"), " "),
        call.caller_number || t("call.withheld")),
      call.vip ? h("span", { class: "badge vip" }, t("call.vip")) : null,
      h("span", { class: `badge phase phase-${call.phase}` }, t(phaseKey)),
      call.answered_at && call.phase !== "ended"
        ? h("span", { class: "talk" }, t("call.talk_time"), " ",
          h("span", { "data-since": call.answered_at }, elapsed(call.answered_at))) : null),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("div", { class: "columns" },
      table("call.ivr_inputs", Object.entries(call.ivr_inputs || {}).map(([k, v]) => [k, String(v)])),
      table("call.crm", flatten(call.crm))),
    call.phase === "ended" ? null : history(call));
  const controls = live ? callControls(call) : null;
  const hint = call.phase === "offered" && phone.state !== "ringing"
    ? h("p", { class: "hint" }, t("call.answer_on_phone")) : null;
  const ended = call.phase === "ended"
    ? h("p", { class: "meta" }, t("call.ended_at", { time: clock(call.ended_at) }),
      call.transferred_to ? ` · ${t("call.transferred_to", { target: call.transferred_to })}` : "") : null;
  replace(callPanel.body, pop, hint, controls, ended, store.me?.state === "wrap_up" ? wrapUp() : null);
  applyText(callPanel.body);
}

/** The caller's previous contacts (GET /api/v1/calls/{id}/contacts): the node answers only while the call is
 *  offered to or connected with this agent, and the page shows them only then. */
async function loadContacts(callId) {
  if (store.contacts?.call_id === callId) return;
  store.contacts = { call_id: callId, status: "loading", items: [] };
  let result;
  try {
    const response = await fetch(`/api/v1/calls/${encodeURIComponent(callId)}/contacts`,
      { headers: { Authorization: `Bearer ${conn.token}` } });
    const body = await response.json().catch(() => ({}));
    result = response.ok ? { status: "ok", items: body.contacts || [] }
      : { status: "failed", error: body?.error?.code || `http_${response.status}` };
  } catch {
    result = { status: "failed", error: "unreachable" };
  }
  if (store.contacts?.call_id !== callId) return;  // another call came meanwhile
  store.contacts = { call_id: callId, ...result };
  renderCall();
}

function history(call) {
  const title = h("h3", { id: "contacts-title" }, t("call.last_contacts"));
  const c = store.contacts?.call_id === call.call_id ? store.contacts : { status: "loading" };
  let body;
  if (!call.caller_number) body = h("p", { class: "meta" }, t("call.last_contacts_withheld"));
  else if (c.status === "loading") body = h("p", { class: "meta" }, t("call.last_contacts_loading"));
  else if (c.status === "failed") body = h("p", { class: "meta" }, t("call.last_contacts_failed"), " ", c.error);
  else if (!c.items.length) body = h("p", { class: "meta" }, t("call.last_contacts_none"));
  else {
    body = h("table", { class: "contacts", "aria-labelledby": "contacts-title" },
      h("thead", {}, h("tr", {}, ["when", "queue", "agent", "disposition", "duration"].map(
        (k) => h("th", { scope: "col" }, t(`contacts.${k}`))))),
      h("tbody", {}, c.items.map((x) => h("tr", {},
        h("td", {}, dateTime(x.arrived_at)), h("td", {}, x.queue || "—"),
        h("td", {}, x.agent_id || (x.answered ? "—" : t("contacts.unanswered"))),
        h("td", {}, x.disposition ? dispositionLabel(x.disposition) : "—"),
        h("td", {}, duration(x.duration_s))))));
  }
  return h("div", { class: "history" }, title, body);
}

function callControls(call) {
  const kind = h("select", { id: "transfer-kind", "data-key": "transfer-kind" },
    h("option", { value: "queue" }, t("call.to_queue")), h("option", { value: "agent" }, t("call.to_agent")));
  const target = h("input", { id: "transfer-target", "data-key": "transfer-target", list: "transfer-queues",
    autocomplete: "off", spellcheck: "false" });
  const queues = h("datalist", { id: "transfer-queues" }, (store.me?.queues || []).map((q) => h("option", { value: q })));
  const held = call.phase === "held";
  return h("div", { class: "call-controls" },
    h("div", { class: "actions" },
      h("button", { type: "button", class: "button", "data-key": "hold",
        onclick: (e) => command(e.currentTarget, held ? "resume" : "hold", { call_id: call.call_id }) },
        t(held ? "call.resume" : "call.hold")),
      h("button", { type: "button", class: "button warning", "data-key": "hangup",
        onclick: (e) => command(e.currentTarget, "hangup", { call_id: call.call_id }) }, t("call.hangup"))),
    h("form", { class: "transfer", onsubmit: (e) => {
      e.preventDefault();
      const value = target.value.trim();
      if (!value) { report(t("call.transfer_needs_target")); target.focus(); return; }
      command(e.submitter, "transfer", { call_id: call.call_id, target: `${kind.value}:${value}` });
    } },
      h("fieldset", {}, h("legend", {}, t("call.transfer")),
        h("div", { class: "field" }, h("label", { for: "transfer-kind" }, t("call.transfer_kind")), kind),
        h("div", { class: "field" }, h("label", { for: "transfer-target" }, t("call.transfer_target")), target, queues),
        h("button", { type: "submit", class: "button", "data-key": "transfer" }, t("call.transfer_button")))));
}

/** The wrap-up's time left (the queue's wrap-up time from agent.state_changed / the hello snapshot): the node
 *  ends the wrap-up by itself when it runs out. */
function countdown() {
  const limit = store.me?.wrap_up_s;
  if (!Number.isFinite(limit) || !Number.isFinite(store.me?.since)) {
    return h("p", { class: "meta", "data-key": "wrap-no-limit" }, t("wrap.no_limit"));
  }
  const until = store.me.since + limit;
  return h("p", { class: "countdown", role: "timer", "aria-label": t("wrap.time_left") },
    t("wrap.time_left"), " ", h("strong", { "data-until": until }, remaining(until)));
}

function wrapUp() {
  const select = h("select", { id: "disposition", "data-key": "disposition" },
    h("option", { value: "" }, t("wrap.choose")),
    dispositions().map((d) => h("option", { value: d }, dispositionLabel(d))));
  const notes = h("textarea", { id: "wrap-notes", "data-key": "wrap-notes", rows: "3", maxlength: String(MAX_NOTES) });
  // The draft survives the re-renders other events cause while the agent types.
  const draft = store.wrapDraft?.call_id === store.call?.call_id ? store.wrapDraft
    : (store.wrapDraft = { call_id: store.call?.call_id, disposition: "", notes: "" });
  select.value = draft.disposition;
  notes.value = draft.notes;
  select.addEventListener("change", () => { draft.disposition = select.value; });
  notes.addEventListener("input", () => { draft.notes = notes.value; });
  const form = h("form", { class: "wrap-up", "aria-labelledby": "wrap-title", onsubmit: (e) => {
    e.preventDefault();
    if (!select.value) { report(t("wrap.needs_disposition")); select.focus(); return; }
    const args = { disposition: select.value };
    if (notes.value.trim()) args.notes = notes.value;
    command(e.submitter, "end_wrap_up", args);
  } },
    h("h3", { id: "wrap-title" }, t("wrap.title"), " ",
      h("span", { class: "meta" }, t("wrap.elapsed"), " ",
        h("span", { "data-since": store.me?.since ?? "" }, elapsed(store.me?.since)))),
    countdown(),
    h("div", { class: "field" }, h("label", { for: "disposition" }, t("wrap.disposition")), select),
    h("div", { class: "field" }, h("label", { for: "wrap-notes" }, t("wrap.notes")), notes),
    h("button", { type: "submit", class: "button primary", "data-key": "end-wrap-up" }, t("wrap.finish")));
  return form;
}

function renderNotices() {
  const unread = (n) => !(n.require_ack ? n.ack_at : n.read_at);
  const rank = (n) => (n.priority === "urgent" && unread(n) ? 0 : unread(n) ? 1 : 2);
  const items = [...store.notices.values()].reverse().sort((a, b) => rank(a) - rank(b));
  if (!items.length) { replace(noticePanel.body, h("p", { class: "empty" }, t("notice.none"))); return; }
  const inCall = ["reserved", "ringing", "on_call", "held"].includes(store.me?.state);
  replace(noticePanel.body, h("ul", { class: "notices" }, items.map((n) => {
    const read = n.require_ack ? n.ack_at : n.read_at;
    const urgent = n.priority === "urgent";
    const button = read ? h("span", { class: "done" }, t(n.require_ack ? "notice.acknowledged" : "notice.read_done"))
      : h("button", { type: "button", class: "button small", "data-key": `read-${n.notice_id}`,
        onclick: async (e) => {
          const receipt = await act(e.currentTarget,
            conn.command("notice_read", { notice_id: n.notice_id, ack: Boolean(n.require_ack) }), report);
          if (receipt) {
            n.read_at = receipt.read_at ?? serverNow();
            n.ack_at = receipt.ack_at ?? null;
            renderNotices();
          }
        } }, t(n.require_ack ? "notice.acknowledge" : "notice.mark_read"));
    return h("li", { class: `notice${urgent ? " urgent" : ""}${read ? " is-read" : ""}`,
      role: urgent && !read && !inCall ? "alert" : null },
      h("div", { class: "notice-head" },
        urgent ? h("span", { class: "badge urgent" }, t("notice.urgent")) : null,
        h("span", { class: "meta" }, t("notice.from", { sender: n.sender }))),
      h("p", { class: "notice-text" }, n.text), button);
  })));
}

function renderSupervision() {
  const s = store.supervision;
  const banner = $("#supervision");
  if (!s) { banner.hidden = true; replace(banner); return; }
  banner.hidden = false;
  replace(banner, h("p", {}, t(`supervision.${s.mode}`, { supervisor: s.supervisor_id })));
}

function render() {
  renderState();
  renderCall();
  renderNotices();
  renderSupervision();
  renderMessage();
  tick();
}

// -- start -----------------------------------------------------------------------------------------------------
function start() {
  const desk = $("#desk");
  desk.append(h("div", { class: "col-left" }, statePanel.section, phone.section), callPanel.section,
    noticePanel.section);
  applyText(desk);
  onLangChange(() => { applyText(desk); render(); phone.render(); });
  setInterval(() => tick(), 1000);
  bootPage({
    role: "agent",
    handlers: { onHello, onEvent },
    onSignedIn: (connection) => { conn = connection; desk.hidden = false; },
    onSignedOut: () => {
      desk.hidden = true;
      Object.assign(store, { me: null, call: null, contacts: null, supervision: null, message: null });
      phone.signedOut();
      store.notices.clear();
    },
  });
}

start();
