// The wallboard (/wallboard): one big number per tile, threshold colours with a word beside them, readable from
// across the room. Options in the URL: ?queue=NAME (repeatable; default: every queue the login sees) and the
// thresholds below, e.g. /wallboard?queue=support&waiting_warn=3&waiting_crit=6. A TV can open it with a
// long-lived supervisor token from POST /api/v1/tokens: /wallboard#token=<token>.
import { h, replace, $ } from "./dom.js";
import { clock, duration, learnSkew, percent, serverNow, span } from "./format.js";
import { applyText, onLangChange, t } from "./i18n.js";
import { bootPage } from "./shell.js";
import { AGENT_STATES, stateBadge } from "./states.js";

const params = new URLSearchParams(location.search);
const num = (name, fallback) => {
  const value = Number(params.get(name));
  return params.has(name) && Number.isFinite(value) ? value : fallback;
};
/** Threshold defaults follow the node's default alert rules (docs/alerts.md). */
export const THRESHOLDS = {
  waiting: { warn: num("waiting_warn", 5), crit: num("waiting_crit", 10) },
  longest: { warn: num("wait_warn", 30), crit: num("wait_crit", 60) },
  abandon: { warn: num("abandon_warn", 0.05), crit: num("abandon_crit", 0.10) },
  asa: { warn: num("asa_warn", 20), crit: num("asa_crit", 40) },
  sl_target: num("sl_target", 0.8),
};
const onlyQueues = params.getAll("queue");

const store = { agents: new Map(), queues: new Map() };

function level(value, { warn, crit }) {
  if (value === null || !Number.isFinite(value)) return "none";
  return value >= crit ? "crit" : value >= warn ? "warn" : "ok";
}

function slLevel(value) {
  if (value === null || !Number.isFinite(value)) return "none";
  return value < THRESHOLDS.sl_target - 0.10 ? "crit" : value < THRESHOLDS.sl_target ? "warn" : "ok";
}

function tile(labelKey, value, lvl, { big = false, note = null, since = null } = {}) {
  return h("div", { class: `tile lvl-${lvl}${big ? " tile-big" : ""}`, role: "group", "aria-label": t(labelKey) },
    h("div", { class: "tile-label" }, t(labelKey)),
    h("div", { class: "tile-value" }, since ? h("span", { "data-since": since }, value) : value),
    h("div", { class: "tile-level" }, lvl === "none" ? (note || "") : t(`lvl.${lvl}`)));
}

function abandonRate(q) {
  const settled = q.answered + q.abandoned;
  return settled > 0 ? q.abandoned / settled : null;
}

function stateCounts(queue) {
  const counts = new Map(AGENT_STATES.map((s) => [s, 0]));
  for (const agent of store.agents.values()) {
    if (queue && !(agent.queues || []).includes(queue)) continue;
    counts.set(agent.state, (counts.get(agent.state) || 0) + 1);
  }
  return counts;
}

function queueRow(q) {
  const counts = stateCounts(q.queue);
  const abandon = abandonRate(q);
  return h("section", { class: "wb-queue", "aria-labelledby": `wb-${q.queue}` },
    h("h2", { id: `wb-${q.queue}` }, q.queue),
    h("div", { class: "tiles" },
      tile("wall.waiting", String(q.waiting), level(q.waiting, THRESHOLDS.waiting), { big: true }),
      tile("wall.longest", duration(q.longest_wait_seconds), level(q.longest_wait_seconds, THRESHOLDS.longest)),
      tile("wall.sl", percent(q.service_level), slLevel(q.service_level),
        { note: t("wall.no_data") }),
      tile("wall.asa", duration(q.asa_seconds), level(q.asa_seconds, THRESHOLDS.asa), { note: t("wall.no_data") }),
      tile("wall.abandon", percent(abandon), level(abandon, THRESHOLDS.abandon), { note: t("wall.no_data") })),
    h("ul", { class: "wb-agents", "aria-label": t("wall.agents") },
      AGENT_STATES.map((s) => h("li", {}, stateBadge(s), h("span", { class: "count" }, String(counts.get(s)))))));
}

function render() {
  const queues = [...store.queues.values()]
    .filter((q) => !onlyQueues.length || onlyQueues.includes(q.queue))
    .sort((a, b) => a.queue.localeCompare(b.queue));

  $("#board").classList.toggle("single", queues.length === 1);
  replace($("#board"),
    queues.length ? queues.map(queueRow) : h("p", { class: "empty" }, t("wall.no_queues")),
    h("p", { class: "wb-foot" }, t("wall.window", { window: span(queues[0]?.window_seconds) }), " · ",
      t("wall.thresholds", { warn: THRESHOLDS.waiting.warn, crit: THRESHOLDS.waiting.crit,
        target: percent(THRESHOLDS.sl_target) })));
}

function onHello(data) {
  $("#who").textContent = data.subject;
  store.agents = new Map(data.agents.map((a) => [a.agent_id, a]));
  learnSkew(data.agents.find((a) => Number.isFinite(a.since)));
  store.queues = new Map(data.queues.map((q) => [q.queue, q]));
  render();
}

function onEvent(env) {
  const d = env.data;
  if (env.type === "queue.stats") store.queues.set(d.queue, d);
  else if (env.type === "agent.state_changed" && store.agents.has(d.agent_id)) {
    Object.assign(store.agents.get(d.agent_id), { state: d.state, since: env.ts });
  } else if (env.type === "agent.logged_in" && store.agents.has(d.agent_id)) {
    store.agents.get(d.agent_id).queues = d.queues;
  } else return;
  render();
}

function start() {
  applyText();
  onLangChange(render);
  const updateClock = () => { $("#clock").textContent = clock(serverNow()); };
  updateClock();
  setInterval(updateClock, 1000);
  bootPage({
    role: "supervisor",
    titleKey: "wall.title",
    handlers: { onHello, onEvent },
    onSignedIn: () => { $("#board").hidden = false; },
    onSignedOut: () => { $("#board").hidden = true; store.agents.clear(); store.queues.clear(); },
  });
}

start();
