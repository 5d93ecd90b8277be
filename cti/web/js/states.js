// The agent-state palette used by every page: a colour (CSS class state-<name>, colours in app.css) and always a
// text label beside it (never colour alone).
import { h } from "./dom.js";
import { codeLabel, site } from "./format.js";
import { t } from "./i18n.js";

export const AGENT_STATES = ["available", "reserved", "ringing", "on_call", "held", "wrap_up", "paused", "logged_out"];

/** States in which the agent is busy with a call. */
export const CALL_STATES = new Set(["reserved", "ringing", "on_call", "held", "wrap_up"]);

export function stateLabel(state) {
  return AGENT_STATES.includes(state) ? t(`state.${state}`) : String(state ?? "—");
}

/** A badge: swatch + label (+ reason for a pause). */
export function stateBadge(state, reason = null, { large = false } = {}) {
  const known = AGENT_STATES.includes(state) ? state : "unknown";
  const label = stateLabel(state);
  const suffix = state === "paused" && reason ? ` · ${reasonLabel(reason)}` : "";
  return h("span", { class: `badge state-${known}${large ? " badge-large" : ""}` },
    h("span", { class: "swatch", "aria-hidden": "true" }), label + suffix);
}

export const PAUSE_REASONS = ["break", "lunch", "training", "meeting", "admin"];

/** A not-ready reason in words: its configured label (config desk.pause_reasons), the page's own, or the code. */
export function reasonLabel(reason) {
  return codeLabel(site.pause_reason_labels, reason, PAUSE_REASONS.includes(reason) ? t(`reason.${reason}`) : null);
}
