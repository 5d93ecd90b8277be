// The supervisor console (/supervisor). hello / events / replies -> `store` -> render(); timers tick separately.
import { h, replace, $ } from "./dom.js";
import { clock, duration, elapsed, learnSkew, percent, site, span, tick } from "./format.js";
import { applyText, onLangChange, t } from "./i18n.js";
import { act, bootPage, panel } from "./shell.js";
import { reportPanel, renderReport, startReport, stopReport } from "./reportchart.js";
import { CALL_STATES, PAUSE_REASONS, reasonLabel, stateBadge } from "./states.js";

const store = {
  agents: new Map(), queues: new Map(), calls: new Map(), alerts: new Map(), notices: new Map(), message: null,
  adherence: new Map(), // agent_id -> the adherence.exception in force
};
let conn = null;
let me = "";

const queuePanel = panel("queue-panel", "sup.queues", "panel-queues");
const agentPanel = panel("agent-panel", "sup.agents", "panel-agents");
const callPanel = panel("call-panel", "sup.calls", "panel-calls");
const alertPanel = panel("alert-panel", "sup.alerts", "panel-alerts");
const noticePanel = panel("notice-panel", "sup.notices", "panel-notices");

function report(text) { store.message = text; renderMessage(); }
function renderMessage() { replace($("#message"), store.message ? h("p", {}, store.message) : null); }

// -- model -----------------------------------------------------------------------------------------------------
function onHello(data) {
  me = data.subject;
  $("#who").textContent = data.subject;
  store.agents = new Map(data.agents.map((a) => [a.agent_id, a]));
  learnSkew(data.agents.find((a) => Number.isFinite(a.since)));
  store.queues = new Map(data.queues.map((q) => [q.queue, q]));
  store.calls = new Map(data.calls.map((c) => [c.call_id, { ...c, phase: callPhase(c.phase) }]));
  // active alerts nobody acknowledged yet, raised before this console connected
  store.alerts = new Map((data.alerts || []).map((a) => [a.alert_id, { ...a, acknowledged: null }]));
  store.adherence = new Map((data.adherence || []).map((x) => [x.agent_id, x]));
  for (const notice of data.notices || []) {
    if (!store.notices.has(notice.notice_id)) store.notices.set(notice.notice_id, { notice, receipts: new Map() });
    refreshReceipts(notice.notice_id);
  }
  renderAll();
}

/** The call snapshot's phase in the words this page uses. */
function callPhase(phase) {
  if (["connected", "held", "queued", "offered", "offering", "ivr"].includes(phase)) {
    return phase === "offering" ? "offered" : phase;
  }
  return "connected";
}

function onEvent(env) {
  const d = env.data;
  const call = d.call_id ? store.calls.get(d.call_id) : undefined;
  switch (env.type) {
    case "agent.state_changed": {
      const agent = store.agents.get(d.agent_id);
      if (agent) Object.assign(agent, { state: d.state, reason: d.reason, call_id: d.call_id, since: env.ts });
      renderAgents(); return;
    }
    case "agent.logged_in": {
      const agent = store.agents.get(d.agent_id);
      if (agent) agent.queues = d.queues;
      return;
    }
    case "call.queued":
      store.calls.set(d.call_id, { ...call, call_id: d.call_id, queue: d.queue, vip: d.vip, priority: d.priority,
        caller_number: d.caller_number, phase: "queued", queued_at: env.ts,
        arrived_at: call?.arrived_at ?? env.ts, agent_id: null });
      break;
    case "call.offered":
      store.calls.set(d.call_id, { ...call, ...d, phase: "offered", arrived_at: call?.arrived_at ?? env.ts });
      break;
    case "call.answered":
      if (call) Object.assign(call, { phase: "connected", answered_at: env.ts, wait_seconds: d.wait_seconds,
        agent_id: d.agent_id, recording_serial: d.recording_serial });
      break;
    case "call.transferred":
      if (call) Object.assign(call, { phase: "queued", queue: d.queue, agent_id: null, supervision: null });
      break;
    case "call.ended":
    case "call.abandoned":
      store.calls.delete(d.call_id);
      break;
    case "queue.stats":
      store.queues.set(d.queue, d);
      renderQueues(); return;
    case "alert.raised":
      store.alerts.set(d.alert_id, { ...d, raised_at: env.ts, acknowledged: null });
      renderAlerts(); return;
    case "alert.acknowledged":
      acknowledged(d);
      return;
    case "alert.cleared":
      store.alerts.delete(d.alert_id);
      renderAlerts(); return;
    case "adherence.exception":
      store.adherence.set(d.agent_id, d);
      renderAgents(); return;
    case "adherence.exception_ended":
      store.adherence.delete(d.agent_id);
      renderAgents(); return;
    case "notice.broadcast":
      if (!store.notices.has(d.notice_id)) store.notices.set(d.notice_id, { notice: d, receipts: new Map() });
      renderNotices(); return;
    case "notice.read": {
      const entry = store.notices.get(d.notice_id);
      if (entry) {
        const known = entry.receipts.get(d.agent_id) || { agent_id: d.agent_id, delivered_at: null };
        entry.receipts.set(d.agent_id, { ...known, read_at: d.read_at, ack_at: d.ack_at });
      }
      renderNotices(); return;
    }
    case "supervision.started":
    case "supervision.changed":
      if (call) call.supervision = { supervisor_id: d.supervisor_id, mode: d.mode, state: "on" };
      break;
    case "supervision.ended":
      if (call) call.supervision = null;
      break;
    default:
      return;
  }
  renderCalls();
  renderAgents();
}

async function refreshReceipts(noticeId) {
  const reply = await conn.command("notice_receipts", { notice_id: noticeId }).catch(() => null);
  const entry = store.notices.get(noticeId);
  if (!reply || !entry) return;
  entry.receipts = new Map(reply.receipts.map((r) => [r.agent_id, r]));
  renderNotices();
}

// -- views -----------------------------------------------------------------------------------------------------
function th(key, attrs = {}) { return h("th", { scope: "col", ...attrs }, t(key)); }

function renderQueues() {
  const rows = [...store.queues.values()].sort((a, b) => a.queue.localeCompare(b.queue));
  replace(queuePanel.body, h("table", { class: "grid" },
    h("caption", { class: "vh" }, t("sup.queues")),
    h("thead", {}, h("tr", {}, th("q.queue"), th("q.waiting", { class: "num" }), th("q.longest", { class: "num" }),
      th("q.sl", { class: "num" }), th("q.asa", { class: "num" }), th("q.abandoned", { class: "num" }),
      th("q.available", { class: "num" }), th("q.busy", { class: "num" }))),
    h("tbody", {}, rows.map((q) => h("tr", {},
      h("th", { scope: "row" }, q.queue),
      h("td", { class: `num${q.waiting > 0 ? " strong" : ""}` }, String(q.waiting)),
      h("td", { class: "num" }, duration(q.longest_wait_seconds)),
      h("td", { class: "num" }, percent(q.service_level)),
      h("td", { class: "num" }, duration(q.asa_seconds)),
      h("td", { class: "num" }, `${q.abandoned} / ${q.offered}`),
      h("td", { class: "num" }, `${q.agents_available} / ${q.agents_logged_in}`),
      h("td", { class: "num" }, String(q.agents_busy)))))),
  h("p", { class: "meta" }, t("q.window", { window: span(rows[0]?.window_seconds) })));
}

function agentCall(agent) {
  const call = agent.call_id ? store.calls.get(agent.call_id) : null;
  if (!call) return agent.call_id ? h("span", { class: "meta" }, agent.call_id) : "—";
  return h("span", {}, call.caller_number || "—", call.vip ? h("span", { class: "badge vip" }, t("call.vip")) : null,
    h("span", { class: "meta" }, ` · ${call.queue || ""}`,
      Number.isFinite(call.wait_seconds) ? ` · ${t("sup.waited", { wait: duration(call.wait_seconds) })}` : ""));
}

function stateControl(agent) {
  const id = `set-${agent.agent_id}`;
  const options = agent.state === "logged_out"
    ? [["login_ready", t("sup.do_login_ready")], ["login", t("sup.do_login")]]
    : [...(agent.state === "available" ? [] : [["ready", t("sup.do_ready")]]),
       ...(site.pause_reasons || PAUSE_REASONS).map((r) => [`pause:${r}`, t("sup.do_pause", { reason: reasonLabel(r) })]),
       ["logout", t("sup.do_logout")]];
  const select = h("select", { id, "data-key": id }, options.map(([v, label]) => h("option", { value: v }, label)));
  const run = (e) => {
    const value = select.value;
    const args = { agent_id: agent.agent_id };
    const [name, extra] = value === "login_ready" ? ["login", { ready: true }]
      : value === "login" ? ["login", { ready: false }]
        : value.startsWith("pause:") ? ["not_ready", { reason: value.slice(6) }] : [value, {}];
    act(e.currentTarget, conn.command(name, { ...args, ...extra }), report).then((reply) => {
      if (reply?.agent_id) { Object.assign(store.agents.get(reply.agent_id) || {}, reply); renderAgents(); }
    });
  };
  return h("div", { class: "inline-field" },
    h("label", { for: id, class: "vh" }, t("sup.new_state_for", { agent: agent.name || agent.agent_id })), select,
    h("button", { type: "button", class: "button small", "data-key": `apply-${agent.agent_id}`, onclick: run },
      t("sup.apply"), h("span", { class: "vh" }, ` ${agent.name || agent.agent_id}`)));
}

/** The adherence cell: the exception in force (label and colour), or a quiet dash. */
function adherenceCell(agent) {
  const x = store.adherence.get(agent.agent_id);
  if (!x) return h("span", { class: "meta" }, "—", h("span", { class: "vh" }, ` ${t("adh.none")}`));
  return h("span", { class: "adh-out" }, h("span", { class: "badge adh" }, t("adh.out")), " ",
    h("span", { class: "meta" }, t("adh.detail", { activity: t(`adh.act_${x.activity}`), since: clock(x.out_since) })),
    " ", h("span", { class: "num", "data-since": x.out_since }, elapsed(x.out_since)));
}

function renderAgents() {
  const rows = [...store.agents.values()].sort((a, b) => a.agent_id.localeCompare(b.agent_id));
  replace(agentPanel.body, h("table", { class: "grid agents" },
    h("caption", { class: "vh" }, t("sup.agents")),
    h("thead", {}, h("tr", {}, th("a.agent"), th("a.state"), th("a.time", { class: "num" }), th("a.adherence"),
      th("a.call"), th("a.change"))),
    h("tbody", {}, rows.map((a) => h("tr", { class: `row-state state-edge-${a.state}` },
      h("th", { scope: "row" }, h("span", { class: "name" }, a.name || a.agent_id), " ",
        h("span", { class: "meta" }, a.agent_id)),
      h("td", {}, stateBadge(a.state, a.reason)),
      h("td", { class: "num" }, h("span", { "data-since": a.since ?? "" }, elapsed(a.since))),
      h("td", {}, adherenceCell(a)),
      h("td", {}, agentCall(a)),
      h("td", {}, CALL_STATES.has(a.state) ? h("span", { class: "meta" }, t("sup.after_call")) : stateControl(a)))))));
}

const MODES = [["monitor", "sup.monitor"], ["whisper", "sup.whisper"], ["barge", "sup.barge"]];
const MODE_OF = { listen: "monitor", whisper: "whisper", barge: "barge" };

function supervisionButtons(call) {
  if (call.phase !== "connected" && call.phase !== "held") return h("span", { class: "meta" }, t("sup.not_connected"));
  const mine = call.supervision && call.supervision.supervisor_id === me;
  const other = call.supervision && !mine;
  if (other) return h("span", { class: "meta" }, t("sup.supervised_by", { supervisor: call.supervision.supervisor_id }));
  const send = (e, name) => act(e.currentTarget, conn.command(name, { call_id: call.call_id }), report)
    .then((reply) => {
      if (reply && name !== "end_supervision" && name !== "take_over") {
        call.supervision = { supervisor_id: me, mode: name === "monitor" ? "listen" : name, state: "dialling" };
        renderCalls();
      }
    });
  const who = call.caller_number || call.call_id;
  const buttons = MODES.filter(([name]) => !mine || MODE_OF[call.supervision.mode] !== name)
    .map(([name, key]) => h("button", { type: "button", class: "button small", "data-key": `${name}-${call.call_id}`,
      onclick: (e) => send(e, name) }, t(key), h("span", { class: "vh" }, ` ${who}`)));
  if (mine) {
    buttons.push(h("button", { type: "button", class: "button small", "data-key": `take-${call.call_id}`,
      onclick: (e) => send(e, "take_over") }, t("sup.take_over"), h("span", { class: "vh" }, ` ${who}`)));
    buttons.push(h("button", { type: "button", class: "button small secondary", "data-key": `end-${call.call_id}`,
      onclick: (e) => send(e, "end_supervision") }, t("sup.leave"), h("span", { class: "vh" }, ` ${who}`)));
  }
  return h("div", { class: "actions" }, buttons);
}

function renderCalls() {
  const rows = [...store.calls.values()].sort((a, b) => (a.arrived_at ?? 0) - (b.arrived_at ?? 0));
  if (!rows.length) { replace(callPanel.body, h("p", { class: "empty" }, t("sup.no_calls"))); return; }
  replace(callPanel.body, h("table", { class: "grid" },
    h("caption", { class: "vh" }, t("sup.calls")),
    h("thead", {}, h("tr", {}, th("c.caller"), th("c.queue"), th("c.agent"), th("c.phase"), th("c.duration", { class: "num" }),
      th("c.supervision"))),
    h("tbody", {}, rows.map((c) => {
      const agent = c.agent_id ? store.agents.get(c.agent_id) : null;
      const sup = c.supervision;
      return h("tr", {},
        h("th", { scope: "row" }, c.caller_number || "—", c.vip ? h("span", { class: "badge vip" }, t("call.vip")) : null),
        h("td", {}, c.queue || "—"),
        h("td", {}, agent ? agent.name || agent.agent_id : c.agent_id || "—"),
        h("td", {}, t(`c.phase_${c.phase}`), sup && sup.supervisor_id === me
          ? h("span", { class: "badge mode" }, t(sup.state === "dialling" ? "sup.dialling" : `sup.mode_${sup.mode}`)) : null),
        h("td", { class: "num" }, h("span", { "data-since": c.answered_at ?? c.queued_at ?? c.arrived_at ?? "" },
          elapsed(c.answered_at ?? c.queued_at ?? c.arrived_at))),
        h("td", {}, supervisionButtons(c)));
    }))));
}

/** An acknowledgement (this supervisor's reply or any supervisor's `alert.acknowledged`): the first one wins. */
function acknowledged(d) {
  const alert = store.alerts.get(d.alert_id);
  if (alert && !alert.acknowledged) alert.acknowledged = { by: d.by, at: d.at };
  renderAlerts();
}

function renderAlerts() {
  const alerts = [...store.alerts.values()].reverse();
  replace(alertPanel.body,
    alerts.length ? h("ul", { class: "alerts" }, alerts.map((a) => h("li", {
      class: `alert sev-${a.severity}${a.acknowledged ? " is-acked" : ""}` },
      h("div", { class: "alert-head" },
        h("span", { class: `badge sev sev-${a.severity}` }, t(`sev.${a.severity}`)),
        h("span", { class: "meta" }, clock(a.raised_at), a.queue ? ` · ${a.queue}` : "")),
      h("p", {}, a.message),
      a.acknowledged
        ? h("span", { class: "done" }, t("alert.acked_by", { by: a.acknowledged.by, time: clock(a.acknowledged.at) }))
        : h("button", { type: "button", class: "button small", "data-key": `ack-${a.alert_id}`,
          onclick: (e) => act(e.currentTarget, conn.command("alert_ack", { alert_id: a.alert_id }), report)
            .then((reply) => { if (reply) acknowledged(reply); }) }, t("alert.ack"),
          h("span", { class: "vh" }, ` ${a.message}`)))))
      : h("p", { class: "empty" }, t("alert.none")));
}

function receiptCell(value) { return value ? clock(value) : "—"; }

function renderNotices() {
  const list = [...store.notices.values()].reverse();
  replace($("#sent-notices"), list.length ? list.map(({ notice, receipts }) => h("article", { class: "sent-notice" },
    h("p", { class: "notice-text" }, notice.priority === "urgent" ? h("span", { class: "badge urgent" }, t("notice.urgent")) : null,
      notice.text),
    h("p", { class: "meta" }, t("notice.audience", { audience: notice.audience.join(", ") }),
      notice.require_ack ? ` · ${t("notice.ack_required")}` : ""),
    receipts.size ? h("table", { class: "grid compact" },
      h("caption", { class: "vh" }, t("notice.receipts")),
      h("thead", {}, h("tr", {}, th("r.agent"), th("r.delivered"), th("r.read"), th("r.acked"))),
      h("tbody", {}, [...receipts.values()].map((r) => h("tr", {},
        h("th", { scope: "row" }, store.agents.get(r.agent_id)?.name || r.agent_id),
        h("td", {}, receiptCell(r.delivered_at)), h("td", {}, receiptCell(r.read_at)), h("td", {}, receiptCell(r.ack_at))))))
      : h("p", { class: "meta" }, t("notice.no_receipts")))) : h("p", { class: "empty" }, t("notice.none_sent")));
}

function noticeForm() {
  const text = h("textarea", { id: "notice-text", rows: "3", maxlength: "2000", required: true });
  const priority = h("select", { id: "notice-priority" },
    h("option", { value: "info" }, t("notice.info")), h("option", { value: "urgent" }, t("notice.urgent")));
  const ack = h("input", { id: "notice-ack", type: "checkbox" });
  const form = h("form", { class: "notice-form", onsubmit: async (e) => {
    e.preventDefault();
    if (!text.value.trim()) { report(t("notice.needs_text")); text.focus(); return; }
    const sent = await act(e.submitter, conn.command("broadcast", { text: text.value.trim(), priority: priority.value,
      require_ack: ack.checked }), report);
    if (sent) {
      if (!store.notices.has(sent.notice_id)) store.notices.set(sent.notice_id, { notice: sent, receipts: new Map() });
      text.value = "";
      store.message = null;
      renderMessage();
      renderNotices();
      setTimeout(() => refreshReceipts(sent.notice_id), 1000);
    }
  } },
    h("div", { class: "field" }, h("label", { for: "notice-text", "data-i18n": "notice.text" }), text),
    h("div", { class: "row" },
      h("div", { class: "field" }, h("label", { for: "notice-priority", "data-i18n": "notice.priority" }), priority),
      h("div", { class: "field checkbox" }, ack, h("label", { for: "notice-ack", "data-i18n": "notice.require_ack" }))),
    h("p", { class: "hint", "data-i18n": "notice.audience_hint" }),
    h("button", { type: "submit", class: "button primary", "data-i18n": "notice.send" }));
  return form;
}

function renderAll() {
  renderQueues(); renderAgents(); renderCalls(); renderAlerts(); renderNotices(); renderMessage(); tick();
}

// -- start -----------------------------------------------------------------------------------------------------
function start() {
  const desk = $("#desk");
  noticePanel.body.append(noticeForm(), h("h3", { "data-i18n": "notice.sent" }), h("div", { id: "sent-notices" }));
  desk.append(h("div", { class: "col-main" }, queuePanel.section, reportPanel.section, callPanel.section,
    agentPanel.section),
    h("div", { class: "col-side" }, alertPanel.section, noticePanel.section));
  applyText(desk);
  onLangChange(() => { applyText(desk); renderAll(); renderReport(); });
  setInterval(() => tick(), 1000);
  bootPage({
    role: "supervisor",
    handlers: { onHello, onEvent },
    onSignedIn: (connection) => { conn = connection; desk.hidden = false; startReport(connection.token); },
    onSignedOut: () => {
      desk.hidden = true;
      stopReport();
      for (const map of [store.agents, store.queues, store.calls, store.alerts, store.notices, store.adherence]) {
        map.clear();
      }
    },
  });
}

start();
