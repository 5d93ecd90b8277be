// The supervisor console's "Today by half hour" panel: an interval chart (SVG drawn by the node) and the gap of
// each queue to its targets, from GET /api/v1/reports/queues — the public report route, which admits the
// supervisor's own token and answers for its queues only (docs/reports.md). Refreshed every minute and on demand.
import { h, replace } from "./dom.js";
import { duration, percent } from "./format.js";
import { t } from "./i18n.js";
import { panel } from "./shell.js";

const REFRESH_MS = 60000;
const FIGURES = [
  ["service_level", "rep.fig.service_level"], ["offered", "rep.fig.offered"], ["asa_s", "rep.fig.asa_s"],
  ["abandon_rate", "rep.fig.abandon_rate"], ["aht_s", "rep.fig.aht_s"],
];
const SECONDS = new Set(["asa_s", "aht_s"]);

export const reportPanel = panel("report-panel", "rep.title", "panel-report");
const state = { token: null, figure: "service_level", chartUrl: null, alt: "", rows: [], error: null, timer: null };

async function get(query) {
  const response = await fetch(`/api/v1/reports/queues?${query}`, {
    headers: { Authorization: `Bearer ${state.token}` },
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body?.error?.message || `HTTP ${response.status}`);
  }
  return response;
}

function value(figure, v) {
  if (v === null || v === undefined) return "—";
  if (SECONDS.has(figure)) return duration(v);
  if (figure.endsWith("rate") || figure === "service_level") return percent(v);
  return String(Math.round(v * 100) / 100);
}

function gapText(figure, gap) {
  if (gap === null || gap === undefined) return "—";
  const sign = gap > 0 ? "+" : gap < 0 ? "−" : "±";
  return sign + value(figure, Math.abs(gap));
}

/** Fetch today's chart and targets again (keeps the last good view when the node cannot be reached). */
export async function refreshReport() {
  if (!state.token) return;
  try {
    const svgAnswer = await get(`from=today&to=today&interval=30m&format=svg&figure=${state.figure}`);
    const svg = await svgAnswer.text();
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    state.alt = doc.documentElement.getAttribute("aria-label") || t("rep.title");
    // a data: URL (the pages' Content-Security-Policy allows images from 'self' and data: only)
    state.chartUrl = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
    const json = await (await get("from=today&to=today&interval=day")).json();
    state.rows = json.rows.filter((r) => r.interval === "total");
    state.error = null;
  } catch (err) {
    state.error = err.message;
  }
  renderReport();
}

export function renderReport() {
  const select = h("select", { id: "report-figure", "data-key": "report-figure",
    onchange: (e) => { state.figure = e.currentTarget.value; refreshReport(); } },
  FIGURES.map(([key, label]) => h("option", { value: key, selected: key === state.figure }, t(label))));
  const controls = h("div", { class: "inline-field" },
    h("label", { for: "report-figure" }, t("rep.figure")), select,
    h("button", { type: "button", class: "button small secondary", "data-key": "report-refresh",
      onclick: () => refreshReport() }, t("rep.refresh")));
  const chart = state.chartUrl
    ? h("img", { class: "report-chart", src: state.chartUrl, alt: state.alt, width: 760, height: 320 })
    : h("p", { class: "meta" }, t("rep.loading"));
  const targets = state.rows.flatMap((row) => Object.entries(row.targets).map(([figure, g]) => h("tr", {},
    h("th", { scope: "row" }, row.group),
    h("td", {}, t(`rep.fig.${figure}`)),
    h("td", { class: "num" }, `${t(g.direction === "at_least" ? "rep.at_least" : "rep.at_most")} ${value(figure, g.target)}`),
    h("td", { class: "num" }, value(figure, g.actual)),
    h("td", { class: "num" }, gapText(figure, g.gap)),
    h("td", {}, g.met === null ? "—" : h("span", { class: `badge ${g.met ? "ok" : "missed"}` },
      t(g.met ? "rep.met" : "rep.missed"))))));
  replace(reportPanel.body, controls, chart,
    state.error ? h("p", { class: "banner message", role: "alert" }, state.error) : null,
    h("table", { class: "grid" },
      h("caption", {}, t("rep.targets")),
      h("thead", {}, h("tr", {}, ...["rep.queue", "rep.figure_col", "rep.target", "rep.actual", "rep.gap", "rep.status"]
        .map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, targets.length ? targets : h("tr", {}, h("td", { colspan: 6 }, "—")))));
}

export function startReport(token) {
  state.token = token;
  renderReport();
  refreshReport();
  clearInterval(state.timer);
  state.timer = setInterval(refreshReport, REFRESH_MS);
}

export function stopReport() {
  clearInterval(state.timer);
  Object.assign(state, { token: null, chartUrl: null, rows: [], error: null, timer: null });
  replace(reportPanel.body);
}
