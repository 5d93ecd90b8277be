// The agent's QA page (/qa/mine): my evaluations -> one evaluation (score per item, comments, the recording,
// its history, its appeals' state and the panel's opinions) -> acknowledge or appeal within the window.
// qa.evaluation.published, qa.evaluation.finalised and qa.appeal.* arrive on
// the WebSocket and refresh the view. State flows one way: API answers and events -> `store` -> render().
import "./qa-i18n.js";
import { h, replace, $ } from "./dom.js";
import { clock } from "./format.js";
import { applyText, errorText, onLangChange, t } from "./i18n.js";
import { QaApi } from "./qa-api.js";
import { player, totalText } from "./qa-player.js";
import { act, bootPage, panel } from "./shell.js";

const store = { evaluations: [], open: null, texts: new Map(), message: null };
let api = null;

const listPanel = panel("qa-mine-list", "qa.my_evaluations", "panel-qa-list");
const detailPanel = panel("qa-mine-detail", "qa.evaluation", "panel-qa-detail");

function report(text) { store.message = text; replace($("#message"), text ? h("p", {}, text) : null); }
const fail = (e) => report(errorText(e.code, e.message));

async function load() {
  store.evaluations = (await api.get("/evaluations")).evaluations;
  if (store.open) store.open = await api.get(`/evaluations/${store.open.evaluation_id}`);
  render();
}

/** The item texts of the evaluation's form version (the result keeps item ids only). */
async function learnTexts(e) {
  const answer = await api.get(`/forms/${encodeURIComponent(e.form_id)}?version=${e.form_version}`);
  for (const section of answer.form.sections) {
    for (const item of section.items) store.texts.set(`${e.form_id}/${e.form_version}/${item.id}`, item.text || item.id);
  }
}

function itemText(e, id) { return store.texts.get(`${e.form_id}/${e.form_version}/${id}`) || id; }

async function open(id) {
  store.open = await api.get(`/evaluations/${id}`);
  await learnTexts(store.open);
  render();
  $("#qa-mine-detail-title")?.focus();
}

function renderList() {
  const rows = store.evaluations.map((e) => h("tr", {},
    h("td", {}, h("code", {}, e.recording_serial)), h("td", {}, clock(e.created_at)), h("td", {}, totalText(e)),
    h("td", {}, t(`qa.state.${e.state}`)),
    h("td", {}, h("button", { type: "button", class: "button small", "data-key": `open-${e.evaluation_id}`,
      "aria-label": `${t("qa.open")} ${e.recording_serial}`, onclick: () => open(e.evaluation_id).catch(fail) },
      t("qa.open")))));
  replace(listPanel.body, rows.length
    ? h("table", { class: "table" }, h("thead", {}, h("tr", {},
      ...["qa.recording", "qa.evaluated_at", "qa.total", "qa.state"].map((k) => h("th", { scope: "col" }, t(k))), h("td", {}))),
    h("tbody", {}, ...rows))
    : h("p", { class: "empty" }, t("qa.none_mine")));
}

function appealForm(e) {
  const items = Object.keys(e.result?.items || {});
  const appealed = new Set((e.appeals || []).flatMap((a) => a.item_ids));
  const reason = h("textarea", { id: "qa-appeal-reason", rows: "3", "data-key": "qa-appeal-reason" });
  const submit = h("button", { type: "submit", class: "button warning" }, t("qa.appeal_submit"));
  const form = h("form", { class: "qa-appeal", novalidate: true },
    h("fieldset", {}, h("legend", {}, t("qa.appeal_items")),
      ...items.filter((id) => !appealed.has(id)).map((id) => h("div", { class: "field checkbox" },
        h("input", { id: `appeal-${id}`, type: "checkbox", value: id, "data-key": `appeal-${id}` }),
        h("label", { for: `appeal-${id}` }, itemText(e, id))))),
    h("div", { class: "field" }, h("label", { for: "qa-appeal-reason" }, t("qa.appeal_reason")), reason),
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = [...form.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value);
    const done = await act(submit, api.post(`/evaluations/${e.evaluation_id}/appeal`,
      { item_ids: chosen, reason: reason.value }), report);
    if (done) { report(null); store.open = done; await load(); }
  });
  return form;
}

function renderDetail() {
  const e = store.open;
  if (!e) { replace(detailPanel.body, h("p", { class: "empty" }, t("qa.nothing_open"))); return; }
  const items = Object.entries(e.result?.items || {}).map(([id, it]) => h("tr", {},
    h("th", { scope: "row" }, itemText(e, id)), h("td", {}, it.na ? t("qa.na") : `${it.earned} / ${it.max}`),
    h("td", {}, it.comment || "")));
  const canAppeal = e.state === "published" && e.appeal_deadline && Date.now() / 1000 <= e.appeal_deadline;
  const ack = h("button", { type: "button", class: "button secondary", onclick: async () => {
    const done = await act(ack, api.post(`/evaluations/${e.evaluation_id}/acknowledge`), report);
    if (done) { store.open = done; await load(); }
  } }, t("qa.acknowledge"));
  replace(detailPanel.body,
    h("dl", { class: "qa-facts" },
      h("dt", {}, t("qa.total")), h("dd", { class: "qa-total" }, totalText(e)),
      h("dt", {}, t("qa.state")), h("dd", {}, t(`qa.state.${e.state}`)),
      h("dt", {}, t("qa.evaluator")), h("dd", {}, e.evaluator),
      h("dt", {}, t("qa.form")), h("dd", {}, `${e.form_id} v${e.form_version}`)),
    player(api, e.recording_serial),
    h("table", { class: "table" }, h("thead", {}, h("tr", {},
      ...["qa.item", "qa.earned", "qa.comment"].map((k) => h("th", { scope: "col" }, t(k))))), h("tbody", {}, ...items)),
    ...(e.appeals || []).map((a) => h("div", { class: "qa-appeal-status" },
      h("p", {}, t("qa.appeal_status", { id: a.appeal_id, state: t(`qa.appeal_state.${a.state}`) })),
      (a.opinions || []).length ? h("ul", {}, ...a.opinions.map((o) => h("li", {},
        `${t(`qa.seat.${o.seat}`)} (${o.member}): ${t(`qa.verdict.${o.verdict}`)}`, o.comment ? ` — ${o.comment}` : ""))) : null)),
    h("h3", {}, t("qa.history")),
    h("ol", { class: "qa-history" }, ...(e.audit || []).map((a) => h("li", {},
      h("time", {}, clock(a.at)), " ", t(`qa.action.${a.action}`), " — ", a.actor,
      a.detail?.reason ? ` — ${a.detail.reason}` : "", a.detail?.comment ? ` — ${a.detail.comment}` : ""))),
    e.state === "published" ? h("div", { class: "actions" }, ack) : null,
    e.state === "published" ? h("h3", {}, t("qa.appeal")) : null,
    e.state === "published" ? h("p", { class: "hint" }, canAppeal
      ? t("qa.appeal_deadline", { time: new Date(e.appeal_deadline * 1000).toLocaleString() }) : t("qa.appeal_closed")) : null,
    canAppeal ? appealForm(e) : null);
}

function render() {
  renderList();
  renderDetail();
  applyText($("#desk"));
}

function onEvent(env) {
  const d = env.data;
  if (env.type === "qa.evaluation.published") report(t("qa.new_evaluation", { serial: d.recording_serial, total: d.total ?? "–" }));
  else if (env.type === "qa.appeal.decided") {
    report(t("qa.appeal_decided", { outcome: t(`qa.outcome.${d.outcome}`), total: d.total ?? "–" }));
  } else if (env.type === "qa.appeal.refused") {
    report(t("qa.appeal_decided", { outcome: t("qa.outcome.rejected_by_leader"), total: "–" }));
  } else if (env.type !== "qa.evaluation.finalised" && !env.type.startsWith("qa.appeal.")) return;
  load().catch(fail);
}

bootPage({
  role: "agent", titleKey: "qa.mine_title",
  handlers: { onHello: () => {}, onEvent },
  onSignedIn: (_connection, session) => {
    api = new QaApi(session.token);
    const desk = $("#desk");
    replace(desk, listPanel.section, detailPanel.section);
    desk.hidden = false;
    load().catch(fail);
  },
  onSignedOut: () => { $("#desk").hidden = true; api = null; store.open = null; },
});
onLangChange(() => { if (api) render(); });
