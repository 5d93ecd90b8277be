// The evaluator page (/qa/evaluate): assigned samples -> open one -> the recording and the scorecard side by side
// -> submit; the open appeals the supervisor may act on (admit / refuse as the agent's team leader, or record its
// opinion in its panel seat; docs/qa.md "Evaluations and appeals"). State flows one way: API answers and qa.* events -> `store` -> render().
import "./qa-i18n.js";
import { h, replace, $ } from "./dom.js";
import { applyText, errorText, onLangChange, t } from "./i18n.js";
import { QaApi } from "./qa-api.js";
import { player, totalText } from "./qa-player.js";
import { act, bootPage, panel } from "./shell.js";

const store = { assigned: [], forms: [], serial: null, form: null, result: null, message: null, appeals: [] };
const OPEN = new Set(["filed", "accepted_by_leader", "under_review"]);
let api = null;

const assignedPanel = panel("qa-assigned", "qa.assigned", "panel-qa-assigned");
const playerPanel = panel("qa-player", "qa.player", "panel-qa-player");
const formPanel = panel("qa-form", "qa.scorecard", "panel-qa-form");
const appealsPanel = panel("qa-appeals", "qa.appeals", "panel-qa-appeals");

function report(text) { store.message = text; replace($("#message"), text ? h("p", {}, text) : null); }

async function load() {
  const [assigned, forms] = await Promise.all([api.get("/assignments"), api.get("/forms")]);
  store.assigned = assigned.samples.filter((s) => s.recording_serial);
  store.forms = forms.forms;
  await loadAppeals();
  if (!store.form && store.forms.length) await chooseForm(store.forms[store.forms.length - 1].form_id);
  render();
}

/** The evaluations with an open appeal, each with its appeals, opinions and history. */
async function loadAppeals() {
  const appealed = (await api.get("/evaluations")).evaluations.filter((e) => e.state === "appealed");
  store.appeals = await Promise.all(appealed.map((e) => api.get(`/evaluations/${e.evaluation_id}`)));
}

async function appealStep(button, path, body) {
  const done = await act(button, api.post(`/evaluations/${path}`, body), report);
  if (done) { report(null); await loadAppeals(); render(); }
}

function appealCard(e) {
  const a = (e.appeals || []).find((x) => OPEN.has(x.state));
  if (!a) return null;
  const key = `appeal-${a.appeal_id}`;
  const comment = h("textarea", { id: `${key}-comment`, rows: "2", "data-key": `${key}-comment` });
  const head = [
    h("h3", {}, `${e.agent_id} — ${e.recording_serial}`),
    h("p", {}, t("qa.appeal_status", { id: a.appeal_id, state: t(`qa.appeal_state.${a.state}`) })),
    h("p", { class: "hint" }, `${a.item_ids.join(", ")}: ${a.reason}`),
    (a.opinions || []).length ? h("ul", {}, ...a.opinions.map((o) => h("li", {},
      `${t(`qa.seat.${o.seat}`)} (${o.member}): ${t(`qa.verdict.${o.verdict}`)}`, o.comment ? ` — ${o.comment}` : ""))) : null,
  ];
  const note = h("div", { class: "field" }, h("label", { for: `${key}-comment` }, t("qa.opinion_comment")), comment);
  if (a.state === "filed") {
    const admit = h("button", { type: "button", class: "button primary small", onclick: () =>
      appealStep(admit, `${e.evaluation_id}/appeal/admission`, { admit: true }) }, t("qa.admit"));
    const refuse = h("button", { type: "button", class: "button warning small", onclick: () =>
      appealStep(refuse, `${e.evaluation_id}/appeal/admission`, { admit: false, reason: comment.value.trim() }) }, t("qa.refuse"));
    return h("article", { class: "qa-appeal-card" }, ...head, note, h("div", { class: "actions" }, admit, refuse));
  }
  const verdict = h("select", { id: `${key}-verdict`, "data-key": `${key}-verdict` },
    ...["uphold", "overturn", "partial"].map((v) => h("option", { value: v }, t(`qa.verdict.${v}`))));
  const points = a.item_ids.map((id) => h("div", { class: "field" },
    h("label", { for: `${key}-${id}` }, t("qa.proposed_points", { item: id })),
    h("input", { id: `${key}-${id}`, type: "number", min: "0", step: "any", inputmode: "decimal", "data-item": id })));
  const submit = h("button", { type: "submit", class: "button primary small" }, t("qa.opinion_submit"));
  const overdue = a.decision_deadline && Date.now() / 1000 > a.decision_deadline
    ? h("button", { type: "button", class: "button secondary small", onclick: (ev) =>
      appealStep(ev.currentTarget, `${e.evaluation_id}/appeal/decision`, undefined) }, t("qa.decide_overdue")) : null;
  const formEl = h("form", { class: "qa-opinion", novalidate: true },
    h("div", { class: "field" }, h("label", { for: `${key}-verdict` }, t("qa.verdict")), verdict),
    ...points, note, h("div", { class: "actions" }, submit, overdue));
  formEl.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = comment.value.trim();
    const proposed = {};
    if (verdict.value !== "uphold") {
      for (const input of formEl.querySelectorAll("input[data-item]")) {
        if (input.value !== "") proposed[input.dataset.item] = { points: Number(input.value), ...(text ? { comment: text } : {}) };
      }
    }
    appealStep(submit, `${e.evaluation_id}/appeal/opinions`, { verdict: verdict.value, points: proposed, comment: text });
  });
  return h("article", { class: "qa-appeal-card" }, ...head, formEl);
}

function renderAppeals() {
  const cards = store.appeals.map(appealCard).filter(Boolean);
  replace(appealsPanel.body, cards.length ? h("div", {}, ...cards) : h("p", { class: "empty" }, t("qa.none_appealed")));
}

async function chooseForm(formId) {
  const answer = await api.get(`/forms/${encodeURIComponent(formId)}`);
  store.form = answer.form;
}

function open(serial) { store.serial = serial; store.result = null; render(); $("#qa-audio")?.focus(); }

function renderAssigned() {
  const rows = store.assigned.map((s) => h("tr", {},
    h("td", {}, `${s.rule_id} v${s.version}`), h("td", {}, s.agent_id), h("td", {}, s.local_date || "–"),
    h("td", {}, h("code", {}, s.recording_serial)),
    h("td", {}, h("button", { type: "button", class: "button small", "data-key": `open-${s.recording_serial}`,
      "aria-label": `${t("qa.open")} ${s.recording_serial}`, onclick: () => open(s.recording_serial) },
      t("qa.open")))));
  const serial = h("input", { id: "qa-serial", "data-key": "qa-serial", spellcheck: "false" });
  const bySerial = h("form", { class: "qa-open", onsubmit: (e) => { e.preventDefault(); if (serial.value.trim()) open(serial.value.trim()); } },
    h("div", { class: "field" }, h("label", { for: "qa-serial" }, t("qa.serial")), serial),
    h("button", { type: "submit", class: "button secondary small" }, t("qa.open")));
  replace(assignedPanel.body,
    rows.length ? h("table", { class: "table" }, h("thead", {}, h("tr", {},
      ...["qa.rule", "qa.agent", "qa.day", "qa.recording"].map((k) => h("th", { scope: "col" }, t(k))), h("td", {}))),
    h("tbody", {}, ...rows)) : h("p", { class: "empty" }, t("qa.none_assigned")),
    h("h3", {}, t("qa.open_serial")), bySerial);
}

function itemField(item) {
  const id = `item-${item.id}`;
  const type = item.type || (store.form.kind === "deduction" ? "deduction" : "scale");
  let input;
  if (type === "yes_no") {
    input = h("div", { class: "qa-choice", role: "radiogroup", "aria-labelledby": `${id}-label` },
      ...[["yes", item.max_points], ["no", 0]].map(([word, value]) => h("label", {},
        h("input", { type: "radio", name: id, value: String(value), "data-key": `${id}-${word}` }), " ", t(`qa.${word}`))));
  } else {
    const max = type === "deduction" ? (item.cap || 1) : item.max_points;
    input = h("div", { class: "field" }, h("label", { for: `${id}-points` }, t(type === "deduction" ? "qa.count" : "qa.points", { max })),
      h("input", { id: `${id}-points`, type: "number", min: "0", max: String(max), step: type === "deduction" ? "1" : "any",
        inputmode: "decimal", "data-key": `${id}-points` }));
  }
  return h("div", { class: "qa-item", "data-item": item.id },
    h("p", { id: `${id}-label`, class: "qa-item-text" }, item.text || item.id,
      item.critical ? h("span", { class: "tag tag-critical" }, t("qa.critical")) : null),
    item.help ? h("p", { class: "hint" }, item.help) : null,
    input,
    item.na_allowed ? h("div", { class: "field checkbox" }, h("input", { id: `${id}-na`, type: "checkbox", "data-key": `${id}-na` }),
      h("label", { for: `${id}-na` }, t("qa.na"))) : null,
    h("div", { class: "field" }, h("label", { for: `${id}-comment` }, `${t("qa.comment")} (${item.text || item.id})`),
      h("textarea", { id: `${id}-comment`, rows: "2", "data-key": `${id}-comment` })));
}

function collect(formEl) {
  const scores = {};
  for (const section of store.form.sections) {
    for (const item of section.items) {
      const id = `item-${item.id}`;
      const answer = {};
      const na = formEl.querySelector(`#${id}-na`);
      const type = item.type || (store.form.kind === "deduction" ? "deduction" : "scale");
      if (na?.checked) answer.na = true;
      else if (type === "yes_no") {
        const chosen = formEl.querySelector(`input[name="${id}"]:checked`);
        if (chosen) answer.points = Number(chosen.value);
      } else {
        const raw = formEl.querySelector(`#${id}-points`).value;
        if (raw !== "") answer[type === "deduction" ? "count" : "points"] = Number(raw);
      }
      const comment = formEl.querySelector(`#${id}-comment`).value.trim();
      if (comment) answer.comment = comment;
      scores[item.id] = answer;
    }
  }
  return scores;
}

function renderForm() {
  if (!store.serial || !store.form) { replace(formPanel.body, h("p", { class: "empty" }, t("qa.nothing_open"))); return; }
  const calibration = h("input", { id: "qa-calibration", type: "checkbox", "data-key": "qa-calibration" });
  const submit = h("button", { type: "submit", class: "button primary" }, t("qa.submit"));
  const formEl = h("form", { class: "qa-scorecard", novalidate: true },
    h("p", { class: "meta" }, `${t("qa.form")}: ${store.form.title || store.form.form_id} v${store.form.version}`),
    ...store.form.sections.map((s) => h("fieldset", { class: "qa-section" },
      h("legend", {}, `${s.title || s.id}${store.form.kind === "deduction" ? "" : ` (${s.weight}%)`}`),
      ...s.items.map(itemField))),
    h("div", { class: "field checkbox" }, calibration, h("label", { for: "qa-calibration" }, t("qa.calibration"))),
    submit,
    h("p", { class: "qa-result", role: "status", tabindex: "-1" }, store.result || ""));
  formEl.addEventListener("submit", async (event) => {
    event.preventDefault();
    const done = await act(submit, api.post("/evaluations", {
      recording_serial: store.serial, form_id: store.form.form_id, form_version: store.form.version,
      scores: collect(formEl), calibration: calibration.checked }), report);
    if (done) {  // the scores stay on screen as submitted, with the result under them
      report(null);
      store.result = t("qa.submitted", { id: done.evaluation_id, total: totalText(done) });
      const status = formEl.querySelector(".qa-result");
      status.textContent = store.result;
      status.focus();
    }
  });
  replace(formPanel.body, formEl);
}

function render() {
  renderAssigned();
  renderAppeals();
  replace(playerPanel.body, store.serial ? player(api, store.serial) : h("p", { class: "empty" }, t("qa.nothing_open")));
  renderForm();
  applyText($("#desk"));
}

bootPage({
  role: "supervisor", titleKey: "qa.eval_title",
  handlers: {
    onHello: () => {},
    onEvent: (env) => {
      if (env.type === "qa.sample.selected") load().catch((e) => report(errorText(e.code, e.message)));
      else if (env.type.startsWith("qa.appeal.")) loadAppeals().then(render).catch((e) => report(errorText(e.code, e.message)));
    },
  },
  onSignedIn: (_connection, session) => {
    api = new QaApi(session.token);
    const desk = $("#desk");
    replace(desk, h("div", { class: "col-side" }, assignedPanel.section, appealsPanel.section), playerPanel.section,
      formPanel.section);
    desk.hidden = false;
    load().catch((e) => report(errorText(e.code, e.message)));
  },
  onSignedOut: () => { $("#desk").hidden = true; api = null; },
});
onLangChange(() => { if (api) render(); });
