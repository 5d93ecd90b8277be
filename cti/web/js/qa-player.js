// The recording player of the QA pages: an <audio> element on the range-served, authorised audio route, with a
// channel choice (both, caller only, agent only). Every request the browser makes is logged by the node.
import { h } from "./dom.js";
import { t } from "./i18n.js";

export function player(api, serial, id = "qa-audio") {
  const audio = h("audio", { id, controls: true, preload: "metadata", "aria-label": `${t("qa.recording")} ${serial}` });
  audio.src = api.audioUrl(serial, "both");
  const select = h("select", { id: `${id}-channel`, "data-key": `${id}-channel` },
    ...["both", "caller", "agent"].map((c) => h("option", { value: c }, t(`qa.channel_${c}`))));
  select.addEventListener("change", () => {
    const at = audio.currentTime;
    audio.src = api.audioUrl(serial, select.value);
    audio.currentTime = at;
  });
  return h("div", { class: "qa-player" },
    h("p", { class: "qa-serial" }, h("strong", {}, t("qa.recording")), " ", h("code", {}, serial)),
    audio,
    h("div", { class: "field" }, h("label", { for: `${id}-channel` }, t("qa.channel")), select));
}

export function totalText(e) {
  if (e.total === null || e.total === undefined) return "–";
  const shown = Number.isInteger(e.total) ? String(e.total) : e.total.toFixed(1);
  return e.failed ? `${shown} (${t("qa.failed")})` : shown;
}
