// The browser phone panel of the agent desktop (docs/web.md, "Browser phone"). The node holds a web phone for this
// agent (a registered SIP phone to the call path) while this page is connected; audio flows over WebRTC between this
// page and the node. Commands: phone_on (our offer -> the node's answer), phone_answer, phone_hangup, phone_off
// (docs/websocket.md); events: phone.state_changed of our own phone (phone_id).
import { h, replace } from "./dom.js";
import { errorText, t } from "./i18n.js";
import { panel } from "./shell.js";

const MODE_KEY = "cti.phone.mode";  // "browser" | "softphone", remembered per browser
const AUTO_KEY = "cti.phone.auto_answer";
const RING_KEY = "cti.phone.ring_sound";
const GATHER_MS = 5000;  // non-trickle ICE: the offer goes once gathering is complete (or after this long)

const remembered = (key, fallback) => {
  try { return localStorage.getItem(key) ?? fallback; } catch { return fallback; }
};
const remember = (key, value) => { try { localStorage.setItem(key, value); } catch { /* private mode */ } };

/** Why the microphone could not be opened, as a message key. */
function micError(error) {
  switch (error?.name) {
    case "NotAllowedError": case "SecurityError": return "phone.error_mic_denied";
    case "NotFoundError": case "OverconstrainedError": return "phone.error_no_mic";
    case "NotReadableError": return "phone.error_mic_busy";
    default: return "phone.error_mic";
  }
}

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") { resolve(); return; }
    const timer = setTimeout(resolve, GATHER_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}

/** A soft two-tone ring from the page itself (Web Audio), while ringing and the sound is on. */
class Ringer {
  constructor() { this.ctx = null; this.timer = null; }
  start() {
    if (this.timer) return;
    try { this.ctx ??= new AudioContext(); } catch { return; }
    const beep = () => {
      const osc = this.ctx.createOscillator();
      const gain = this.ctx.createGain();
      osc.frequency.value = 480;
      gain.gain.value = 0.05;
      osc.connect(gain).connect(this.ctx.destination);
      osc.start();
      osc.stop(this.ctx.currentTime + 0.8);
    };
    beep();
    this.timer = setInterval(beep, 3000);
  }
  stop() { clearInterval(this.timer); this.timer = null; }
}

/**
 * The phone panel. `getConn()` gives the page's Connection; `onChange()` is called after every state change (the
 * page re-renders what depends on it).
 */
export function createPhone({ getConn, onChange = () => {} }) {
  const { section, body } = panel("phone-panel", "phone.title", "panel-phone");
  const audio = h("audio", { id: "phone-audio", autoplay: true, "aria-label": t("phone.remote_audio") });
  section.append(audio);
  const ringer = new Ringer();
  const st = {
    mode: remembered(MODE_KEY, "softphone") === "browser" ? "browser" : "softphone",
    autoAnswer: remembered(AUTO_KEY, "0") === "1",
    ringSound: remembered(RING_KEY, "1") === "1",
    state: "off", phoneId: null, caller: null, callId: null, muted: false, error: null, errorText: null,
    busy: false, turningOn: false,
  };
  let pc = null;
  let mic = null;
  let sender = null;
  let sending = false;

  /** The microphone goes to the node only during a call: an idle phone sends no audio (docs/web.md). */
  function syncSending() {
    const wanted = st.state === "in_call";
    if (!sender || wanted === sending) return;
    sending = wanted;
    sender.replaceTrack(wanted ? mic?.getAudioTracks()[0] ?? null : null).catch(() => { sending = !wanted; });
  }

  function drop() {
    pc?.close();
    pc = null;
    sender = null;
    sending = false;
    mic?.getTracks().forEach((track) => track.stop());
    mic = null;
    audio.srcObject = null;
    Object.assign(st, { state: "off", phoneId: null, caller: null, callId: null, muted: false });
    ringer.stop();
  }

  async function turnOn() {
    if (st.turningOn) return;
    const conn = getConn();
    if (!conn) return;
    drop();
    st.busy = true;
    st.turningOn = true;
    st.error = null;
    st.errorText = null;
    render();
    try {
      try {
        mic = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      } catch (error) {
        throw Object.assign(new Error(error?.message || ""), { key: micError(error) });
      }
      pc = new RTCPeerConnection();
      sender = pc.addTrack(mic.getAudioTracks()[0], mic);
      sending = true;
      pc.addEventListener("track", (event) => {
        audio.srcObject = event.streams[0] || new MediaStream([event.track]);
        audio.play().catch(() => { /* autoplay waits for the first click; the answer click is one */ });
      });
      const mine = pc;
      pc.addEventListener("connectionstatechange", () => {
        if (mine === pc && mine.connectionState === "failed") {
          drop();
          st.error = "phone.error_connection";
          render();
        }
      });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const reply = await conn.command("phone_on", { sdp: pc.localDescription.sdp, auto_answer: st.autoAnswer });
      await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
      Object.assign(st, { state: reply.state, phoneId: reply.phone_id });
    } catch (error) {
      drop();
      st.error = error.key || null;
      st.errorText = error.key ? null : errorText(error.code, error.message);
    } finally {
      st.busy = false;
      st.turningOn = false;
      render();
    }
  }

  async function send(name) {
    const conn = getConn();
    if (!conn) return;
    st.busy = true;
    render();
    try {
      await conn.command(name);  // the phone's state comes with its events (in order), not from this reply
      st.error = null;
      st.errorText = null;
    } catch (error) {
      st.errorText = errorText(error.code, error.message);
    } finally {
      st.busy = false;
      render();
    }
  }

  function setMode(mode) {
    st.mode = mode;
    remember(MODE_KEY, mode);
    if (mode === "browser") turnOn();
    else {
      if (st.phoneId) getConn()?.command("phone_off").catch(() => {});
      drop();
      render();
    }
  }

  function toggleMute() {
    st.muted = !st.muted;
    for (const track of mic?.getAudioTracks() || []) track.enabled = !st.muted;
    render();
  }

  function render() {
    syncSending();
    const ringing = st.state === "ringing";
    if (ringing && st.ringSound) ringer.start(); else ringer.stop();
    const stateKey = st.busy && st.state === "off" ? "phone.state_starting" : `phone.state_${st.state}`;
    const browser = st.mode === "browser";
    const problem = st.error ? t(st.error) : st.errorText;
    replace(body,
      h("div", { class: "phone-line" },
        h("span", { class: `badge phone phone-${st.state}`, "data-key": "phone-state", role: "status" },
          t("phone.state"), ": ", t(stateKey)),
        browser ? null : h("span", { class: "meta" }, t("phone.softphone_hint"))),
      ringing ? h("p", { class: "ringing", role: "alert" },
        t("phone.incoming", { caller: st.caller || t("call.withheld") })) : null,
      st.state === "in_call" ? h("p", { class: "meta" }, t("phone.talking", { caller: st.caller || "—" })) : null,
      problem ? h("p", { class: "phone-error", role: "alert" }, problem) : null,
      h("div", { class: "actions" },
        ringing ? h("button", { type: "button", class: "button primary", "data-key": "phone-answer",
          disabled: st.busy, onclick: () => send("phone_answer") }, t("phone.answer")) : null,
        ringing || st.state === "in_call" ? h("button", { type: "button", class: "button warning",
          "data-key": "phone-hangup", disabled: st.busy, onclick: () => send("phone_hangup") },
          t(ringing ? "phone.decline" : "phone.hangup")) : null,
        st.state === "in_call" ? h("button", { type: "button", class: "button", "data-key": "phone-mute",
          "aria-pressed": st.muted ? "true" : "false", onclick: toggleMute },
          t(st.muted ? "phone.unmute" : "phone.mute")) : null,
        browser
          ? h("button", { type: "button", class: "button secondary", "data-key": "phone-mode",
            disabled: st.busy || ringing || st.state === "in_call", onclick: () => setMode("softphone") },
            t("phone.use_softphone"))
          : h("button", { type: "button", class: "button primary", "data-key": "phone-mode", disabled: st.busy,
            onclick: () => setMode("browser") }, t("phone.use_browser")),
        browser && st.state === "off" && !st.busy ? h("button", { type: "button", class: "button",
          "data-key": "phone-retry", onclick: () => turnOn() }, t("phone.retry")) : null),
      h("div", { class: "phone-options" },
        h("label", { class: "check" }, h("input", { type: "checkbox", "data-key": "phone-auto",
          checked: st.autoAnswer, onchange: (e) => {
            st.autoAnswer = e.currentTarget.checked;
            remember(AUTO_KEY, st.autoAnswer ? "1" : "0");
          } }), " ", t("phone.auto_answer")),
        h("label", { class: "check" }, h("input", { type: "checkbox", "data-key": "phone-ring",
          checked: st.ringSound, onchange: (e) => {
            st.ringSound = e.currentTarget.checked;
            remember(RING_KEY, st.ringSound ? "1" : "0");
            render();
          } }), " ", t("phone.ring_sound"))));
    audio.setAttribute("aria-label", t("phone.remote_audio"));
    onChange();
  }

  return {
    section,
    render,
    /** A new hello: the node's phone ended with the previous connection; turn it on again if it is wanted. */
    onHello() {
      if (st.mode === "browser" && !st.turningOn) turnOn();
      else render();
    },
    /** phone.state_changed: only our own phone's (its id came in phone_on's reply). */
    onEvent(data) {
      if (st.turningOn || !st.phoneId || data.phone_id !== st.phoneId) return;
      if (data.state === "off") {
        drop();
        if (data.reason === "disconnected" && st.mode === "browser") { turnOn(); return; }  // our connection blinked
        if (data.reason !== "turned_off") st.error = `phone.off_${data.reason}`;
      } else {
        Object.assign(st, { state: data.state, caller: data.caller ?? st.caller, callId: data.call_id });
        if (data.state === "ready") Object.assign(st, { caller: null, callId: null, muted: false });
      }
      render();
    },
    signedOut() {
      drop();
      render();
    },
    get state() { return st.state; },
  };
}
