// Numbers, durations and times, in the page's language. Times are shown in the site's time zone (hello's
// site.timezone, config node.timezone); before the first hello, in the browser's.
import { lang } from "./i18n.js";

/** 75 -> "1:15", 3725 -> "1:02:05"; null -> "—" */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return hh > 0 ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

/** 0.8125 -> "81%" (null -> "—") */
export function percent(fraction) {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return "—";
  return new Intl.NumberFormat(lang(), { style: "percent", maximumFractionDigits: 0 }).format(fraction);
}

/** A statistics window in words: 86400 -> "24 h", 900 -> "15 min". */
export function span(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return "—";
  return seconds >= 3600 && seconds % 3600 === 0 ? `${seconds / 3600} h` : `${Math.round(seconds / 60)} min`;
}

/** What hello says of the site: {timezone, pause_reasons, dispositions, pause_reason_labels, disposition_labels}
 * (docs/websocket.md). */
export const site = { timezone: undefined, pause_reasons: null, dispositions: null, pause_reason_labels: {},
  disposition_labels: {} };

/** Take hello's `site`; a zone the browser does not know leaves the browser's own. */
export function learnSite(info) {
  if (!info) return;
  let zone;
  try {
    zone = new Intl.DateTimeFormat("en", { timeZone: info.timezone }).resolvedOptions().timeZone;
  } catch {
    zone = undefined;
  }
  Object.assign(site, { timezone: zone, pause_reasons: info.pause_reasons || null,
    dispositions: info.dispositions || null, pause_reason_labels: info.pause_reason_labels || {},
    disposition_labels: info.disposition_labels || {} });
}

/**
 * A configured code in words (config desk.*, hello's site.*_labels: code -> {language tag: label, "*": any}):
 * the configured label in the page's language (or its base language), else the page's own label (`own`, may be
 * null), else the configured label for every language, English, or any; else the code itself.
 */
export function codeLabel(labels, code, own) {
  const mine = labels?.[code] || {};
  const here = lang();
  const exact = mine[here] ?? mine[here.split("-")[0]];
  return exact ?? own ?? mine["*"] ?? mine.en ?? Object.values(mine)[0] ?? code;
}

/** UTC epoch seconds -> the site's clock time "14:05:09" */
export function clock(epochSeconds) {
  if (!Number.isFinite(epochSeconds)) return "—";
  return new Intl.DateTimeFormat(lang(), { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    timeZone: site.timezone }).format(new Date(epochSeconds * 1000));
}

/** UTC epoch seconds -> the site's date and time, "2026-12-06 14:05" (in the page's language) */
export function dateTime(epochSeconds) {
  if (!Number.isFinite(epochSeconds)) return "—";
  return new Intl.DateTimeFormat(lang(), { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", hour12: false, timeZone: site.timezone }).format(new Date(epochSeconds * 1000));
}

/** The server's clock as the page estimates it (UTC epoch seconds): the browser's minus the measured skew. */
let skew = 0;
export function serverNow() { return Date.now() / 1000 - skew; }
/** From a snapshot that carries both `since` and `time_in_state_s` (computed at the server's `now`). */
export function learnSkew(snapshot) {
  if (snapshot && Number.isFinite(snapshot.since) && Number.isFinite(snapshot.time_in_state_s)) {
    skew = Date.now() / 1000 - (snapshot.since + snapshot.time_in_state_s);
  }
}

/** Time since `since` (UTC epoch s) on the server's clock; "—" when unknown. */
export function elapsed(since) {
  const value = Number(since);
  return Number.isFinite(value) && value > 0 && since !== "" && since !== null ? duration(serverNow() - value) : "—";
}

/** Time until `until` (UTC epoch s) on the server's clock, never below 0:00; "—" when unknown. */
export function remaining(until) {
  const value = Number(until);
  return Number.isFinite(value) && until !== "" && until !== null ? duration(Math.max(0, value - serverNow())) : "—";
}

/** Every element with data-since (epoch s) shows the time since then, every one with data-until the time left
 *  until then; call every second. */
export function tick(root = document) {
  for (const el of root.querySelectorAll("[data-since]")) el.textContent = elapsed(el.dataset.since);
  for (const el of root.querySelectorAll("[data-until]")) el.textContent = remaining(el.dataset.until);
}
