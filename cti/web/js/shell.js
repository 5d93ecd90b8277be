// What the three pages share: the header (who, connection status, language, sign out) and the sign-in form
// (labels on every field, an error summary that takes the focus, as in the GOV.UK Design System).
import { Connection, login, saved } from "./conn.js";
import { h, replace, $ } from "./dom.js";
import { applyText, errorText, langSwitch, onLangChange, t } from "./i18n.js";
import { learnSite } from "./format.js";

/**
 * Start a page: show the sign-in form (or reuse the tab's token, or a token in the URL fragment `#token=`),
 * then connect. `role` is "agent" | "supervisor" (what /auth/login is asked for); `handlers` get hello and events;
 * `onSignedIn(connection, session)` runs before the connection opens, `onSignedOut()` when it ends.
 */
export function bootPage({ role, titleKey = `${role === "agent" ? "agent" : "sup"}.title`, handlers, onSignedIn,
  onSignedOut }) {
  applyText();
  $("#lang").append(langSwitch());
  onLangChange(() => applyText());
  const status = $("#status");
  const showStatus = (name) => {
    status.dataset.status = name;
    status.dataset.i18n = `conn.${name}`;
    status.textContent = t(`conn.${name}`);
  };
  let connection = null;

  const signOut = (reason = null) => {
    connection?.close();
    connection = null;
    saved.drop(role);
    $("#signout").hidden = true;
    $("#who").textContent = "";
    status.textContent = "";
    onSignedOut?.();
    showLogin(reason);
  };

  const connect = (session) => {
    $("#login").hidden = true;
    $("#signout").hidden = false;
    $("#who").textContent = session.subject;
    connection = new Connection(session.token, {
      ...handlers,
      onHello: (data) => { learnSite(data.site); handlers.onHello?.(data); },
      onStatus: (name) => { showStatus(name); handlers.onStatus?.(name); },
      onEnded: (code) => signOut(code),
    });
    onSignedIn(connection, session);
    connection.open();
  };

  const showLogin = (reason) => {
    const section = $("#login");
    section.hidden = false;
    renderLogin(section, role, titleKey, reason, (session) => { saved.put(role, session); connect(session); });
  };

  $("#signout").addEventListener("click", () => signOut());

  const fragment = new URLSearchParams(location.hash.slice(1)).get("token");
  const session = fragment ? { token: fragment, subject: "" } : saved.get(role);
  if (fragment) history.replaceState(null, "", location.pathname + location.search);
  if (session && (!session.expires_at || session.expires_at * 1000 > Date.now())) connect(session);
  else showLogin(null);
}

function renderLogin(section, role, titleKey, reason, onSession) {
  const idLabel = role === "agent" ? "login.agent_id" : "login.supervisor_id";
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const idInput = h("input", { id: "login-id", name: "id", autocomplete: "username", required: true,
    spellcheck: "false", autocapitalize: "none" });
  const password = h("input", { id: "login-password", name: "password", type: "password",
    autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "button primary", "data-i18n": "login.submit" });
  const form = h("form", { class: "login-form", novalidate: true },
    h("h1", { "data-i18n": titleKey }),
    h("p", { class: "hint", "data-i18n": `login.intro_${role}` }),
    summary,
    h("div", { class: "field" }, h("label", { for: "login-id", "data-i18n": idLabel }), idInput),
    h("div", { class: "field" }, h("label", { for: "login-password", "data-i18n": "login.password" }), password),
    submit);
  const showError = (code) => {
    replace(summary, h("h2", { "data-i18n": "login.problem" }), h("p", {}, errorText(code)));
    summary.hidden = false;
    applyText(summary);
    summary.focus();
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!idInput.value.trim() || !password.value) { showError("missing_credentials"); return; }
    submit.disabled = true;
    try {
      const session = await login(role, idInput.value.trim(), password.value);
      section.hidden = true;
      onSession(session);
    } catch (error) {
      showError(error.code);
    } finally {
      submit.disabled = false;
    }
  });
  replace(section, form);
  applyText(section);
  if (reason) showError(reason);
  else idInput.focus();
}

/** A panel: <section aria-labelledby> with a heading; returns {section, body}. */
export function panel(id, titleKey, extraClass = "") {
  const heading = h("h2", { id: `${id}-title`, "data-i18n": titleKey });
  const body = h("div", { class: "panel-body" });
  const section = h("section", { id, class: `panel ${extraClass}`.trim(), "aria-labelledby": `${id}-title` },
    heading, body);
  return { section, body };
}

/** Run a command from a button: disables it meanwhile, reports a refusal in the page's message area. */
export async function act(button, promise, report) {
  if (button) button.disabled = true;
  try {
    return await promise;
  } catch (error) {
    report(errorText(error.code, error.message));
    return undefined;
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}
