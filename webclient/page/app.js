// The page: sign-in, a softphone (keypad, call controls, timer, quality,
// level meter, devices, incoming calls), the room's participants, the call
// history and a moderator console. voxgate.js does the signalling.
"use strict";
const vg = new Voxgate();
const $ = (id) => document.getElementById(id);
const show = (id, on) => $(id).classList.toggle("hidden", !on);
const store = {
  get: (k) => { try { return localStorage.getItem(k); } catch (e) { return null; } },
  set: (k, v) => { try { if (v === null) localStorage.removeItem(k); else localStorage.setItem(k, v); } catch (e) { /* private mode */ } },
};

let current = null;   // the call in progress: {id, pc, number, room, muted, started}
let incoming = null;  // the id of a call that rings
let signedIn = false; // the WebSocket should be up
let leaving = false;  // signing out: a closed socket is expected
let micStream = null;

// ---- messages ----
function status(s) { $("status").textContent = s; }
function error(s) { $("error").textContent = s || ""; show("error", !!s); }
function conn(s) { $("conn").textContent = s || ""; show("conn", !!s); }

// Why a call ended, in words: the SIP code of a refused call, or the reason.
function endedText(m, number) {
  const n = number ? " " + number : "";
  switch (m.code) {
    case 404: case 604: return "Number" + n + " not found. Check it and try again.";
    case 486: case 600: return (number || "The other side") + " is busy. Try again later.";
    case 480: return (number || "The other side") + " is not available now (nobody answered or no device is online).";
    case 487: return "The call was cancelled.";
    case 403: return "You may not call" + n + ".";
    case 408: return (number || "The other side") + " did not answer.";
    case 603: return (number || "The other side") + " declined the call.";
    case 503: return "voxgate cannot take the call now (busy or shutting down). Try again in a minute.";
  }
  if (m.code >= 400) return "The call failed: " + (m.reason || m.code) + ".";
  const r = m.reason || "";
  if (r === "the other side hung up") return "Call ended: the other side hung up.";
  if (r.startsWith("connection")) return "Call ended: the network connection to voxgate failed.";
  if (r === "answered elsewhere") return "The call was answered on another device.";
  return "Call ended" + (r ? ": " + r : "") + ".";
}

function micError(err) {
  if (err && (err.name === "NotAllowedError" || err.name === "SecurityError"))
    return "The microphone is blocked. Allow it for this site (click the icon left of the address, set Microphone to Allow), then try again.";
  if (err && (err.name === "NotFoundError" || err.name === "OverconstrainedError"))
    return "No microphone was found. Plug one in (or pick another under \"Microphone and speaker\") and try again.";
  if (err && err.name === "NotReadableError")
    return "The microphone is in use by another program or cannot be opened. Close that program and try again.";
  return "The microphone could not be opened: " + (err && err.message ? err.message : err) + ".";
}

// ---- sign-in ----
async function start(user) {
  signedIn = true;
  store.set("vg.signedIn", "1");
  $("me").textContent = "Signed in as " + user;
  show("who", true); show("login", false); show("guestform", false); show("phone", true);
  if (vg.room) { // a guest: its room only, at once
    show("dialer", false); show("pad", false); show("call", false); show("join", false);
    show("historybox", false); show("modbox", false);
  }
  await connect();
  if (vg.room) { await place("join", vg.room); return; }
  if (!current) status("Ready to call");
  loadHistory();
  modRestore();
  listDevices().catch(() => {});
}

let retry = 0;
async function connect() {
  try {
    await vg.connect();
    retry = 0;
    if ($("conn").textContent) conn("Connected again.");
    setTimeout(() => { if ($("conn").textContent === "Connected again.") conn(""); }, 3000);
  } catch (err) {
    if (!signedIn) return;
    // The session may be gone (a restart, an expiry): ask for it.
    let u;
    try { u = await vg.session(); } catch (e) { reconnectLater(); return; }
    if (u === null) { signedOut("Your session ended: sign in again."); return; }
    reconnectLater();
  }
}
function reconnectLater() {
  const wait = Math.min(10, 2 ** retry++);
  conn("The connection to voxgate was lost: reconnecting in " + wait + " s…");
  setTimeout(() => { if (signedIn) connect(); }, wait * 1000);
}
function signedOut(msg) {
  signedIn = false;
  store.set("vg.signedIn", null);
  show("phone", false); show("who", false); conn("");
  show("login", true);
  error(msg);
}

$("login").onsubmit = async (e) => {
  e.preventDefault();
  error("");
  if (window.Notification && Notification.permission === "default") Notification.requestPermission().catch(() => {});
  try { await start(await vg.login($("user").value, $("password").value)); }
  catch (err) { error(err.message === "wrong user or password" ? "Wrong user or password." : err.message); }
};
$("logout").onclick = async () => {
  leaving = true; signedIn = false;
  if (current) vg.hangup(current.id);
  await vg.logout();
  store.set("vg.signedIn", null);
  if (vg.room) { show("phone", false); show("who", false); status(""); error(""); conn("You left room " + vg.room + "."); return; } // reloading would sign in again
  location.reload();
};

// ---- the keypad and typed digits ----
const letters = {2: "ABC", 3: "DEF", 4: "GHI", 5: "JKL", 6: "MNO", 7: "PQRS", 8: "TUV", 9: "WXYZ", 0: "+"};
for (const d of "123456789*0#") {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.digit = d;
  b.setAttribute("aria-label", d === "*" ? "star" : d === "#" ? "hash" : d);
  b.innerHTML = d + "<small aria-hidden=\"true\">" + (letters[d] || "&nbsp;") + "</small>";
  b.onclick = () => key(d);
  $("pad").appendChild(b);
}
function key(d) {
  if (current) {
    vg.send({type: "dtmf", id: current.id, digits: d}); tone(d);
    current.keyed = (current.keyed || "") + d;
    $("keyed").textContent = "Keyed: " + current.keyed;
    return;
  }
  $("number").value += d;
  tone(d);
}
$("backspace").onclick = () => { $("number").value = $("number").value.slice(0, -1); $("number").focus(); };
document.addEventListener("keydown", (e) => {
  if ($("phone").classList.contains("hidden") || e.ctrlKey || e.metaKey || e.altKey) return;
  const inField = ["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName);
  if (e.key === "Enter" && e.target === $("number")) { e.preventDefault(); if (!current) $("call").click(); return; }
  if (inField) return;
  if ("0123456789*#".includes(e.key) && e.key.length === 1) { e.preventDefault(); key(e.key); }
  else if (e.key === "Backspace" && !current) { e.preventDefault(); $("backspace").click(); }
  else if (e.key === "Enter" && !current && $("number").value) { e.preventDefault(); $("call").click(); }
});

// ---- sounds: key clicks, the ring ----
let actx = null;
function audioCtx() { if (!actx) actx = new AudioContext(); if (actx.state === "suspended") actx.resume().catch(() => {}); return actx; }
const dtmfFreqs = {1: [697, 1209], 2: [697, 1336], 3: [697, 1477], 4: [770, 1209], 5: [770, 1336], 6: [770, 1477],
  7: [852, 1209], 8: [852, 1336], 9: [852, 1477], "*": [941, 1209], 0: [941, 1336], "#": [941, 1477]};
function beep(freqs, secs, gain) {
  const c = audioCtx(), g = c.createGain();
  g.gain.value = gain; g.connect(c.destination);
  for (const f of freqs) { const o = c.createOscillator(); o.frequency.value = f; o.connect(g); o.start(); o.stop(c.currentTime + secs); }
}
function tone(d) { try { beep(dtmfFreqs[d] || [], 0.12, 0.05); } catch (e) { /* no audio output */ } }
let ringTimer = null;
function ringStart() {
  const ring = () => { try { beep([440, 480], 1.5, 0.1); } catch (e) { /* no audio output */ } };
  ring(); ringTimer = setInterval(ring, 4000);
}
function ringStop() {
  clearInterval(ringTimer); ringTimer = null;
  incoming = null; show("ring", false);
  if (notice) { notice.close(); notice = null; }
}
let notice = null;

// ---- devices: microphone and speaker, remembered ----
async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devs = await navigator.mediaDevices.enumerateDevices();
  const fill = (sel, kind, none, saved) => {
    sel.textContent = "";
    sel.add(new Option(none, ""));
    let n = 0;
    for (const d of devs.filter((x) => x.kind === kind && x.deviceId && x.deviceId !== "default")) {
      sel.add(new Option(d.label || kind.replace("input", " ").replace("output", " ") + ++n, d.deviceId));
    }
    sel.value = [...sel.options].some((o) => o.value === saved) ? saved : "";
  };
  fill($("mic"), "audioinput", "Default microphone", store.get("vg.mic"));
  fill($("speaker"), "audiooutput", "Default speaker", store.get("vg.speaker"));
  if (!$("remote").setSinkId) { $("speaker").disabled = true; $("speaker").title = "This browser cannot choose the speaker."; }
}
$("mic").onchange = () => { store.set("vg.mic", $("mic").value || null); };
$("speaker").onchange = async () => {
  store.set("vg.speaker", $("speaker").value || null);
  await applySpeaker();
};
async function applySpeaker() {
  const id = store.get("vg.speaker") || "";
  if ($("remote").setSinkId) await $("remote").setSinkId(id).catch((err) => error("The speaker could not be chosen: " + err.message));
}

async function openMic() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia)
    throw Object.assign(new Error("this page is not a secure context (serve voxgate over HTTPS, or open it on localhost)"), {name: "SecurityError"});
  const id = store.get("vg.mic");
  let s;
  try { s = await navigator.mediaDevices.getUserMedia({audio: id ? {deviceId: {exact: id}} : true}); }
  catch (err) {
    if (id && err.name === "OverconstrainedError") { store.set("vg.mic", null); s = await navigator.mediaDevices.getUserMedia({audio: true}); }
    else throw err;
  }
  micStream = s;
  meter(s);
  listDevices().catch(() => {});
  return s;
}

// ---- the level meter ----
let meterStop = null;
function meter(stream) {
  if (meterStop) meterStop();
  let c;
  try { c = audioCtx(); } catch (e) { return; }
  const src = c.createMediaStreamSource(stream), an = c.createAnalyser();
  an.fftSize = 1024; src.connect(an);
  const buf = new Float32Array(an.fftSize);
  const t = setInterval(() => {
    an.getFloatTimeDomainData(buf);
    let sum = 0; for (const v of buf) sum += v * v;
    const db = 10 * Math.log10(sum / buf.length + 1e-12); // dBFS
    const pct = Math.max(0, Math.min(100, Math.round((db + 60) * 100 / 60)));
    const muted = current && current.muted;
    $("levelbar").style.width = (muted ? 0 : pct) + "%";
    $("level").setAttribute("aria-valuenow", muted ? 0 : pct);
  }, 100);
  meterStop = () => { clearInterval(t); src.disconnect(); $("levelbar").style.width = "0"; $("level").setAttribute("aria-valuenow", 0); };
}

// ---- calls ----
function setInCall(call) {
  current = call;
  show("call", false); show("join", false); show("dialer", false); show("hangup", true); show("incall", true);
  $("pad").setAttribute("aria-label", "Keypad: sends tones in the call");
  $("hangup").textContent = call.room ? "Leave the room" : "Hang up";
  $("mute").disabled = false;
  setMuted(false);
}
function setIdle() {
  current = null; roomLocked = false; roomRecording = false;
  people.clear(); renderPeople(); show("roombox", false);
  show("call", !vg.room); show("join", true); show("dialer", !vg.room); show("hangup", false); show("incall", false);
  if (vg.room) $("join").textContent = "Join room " + vg.room + " again"; // a guest's only call
  $("pad").setAttribute("aria-label", "Keypad");
  setMuted(false);
  stopTimer();
  $("codec").textContent = ""; $("quality").textContent = ""; $("keyed").textContent = ""; samples.length = 0; drawGraph();
  if (meterStop) { meterStop(); meterStop = null; }
  if (micStream) { micStream.getTracks().forEach((t) => t.stop()); micStream = null; }
  if (!vg.room) loadHistory();
}
function setMuted(on) {
  if (current) current.muted = on;
  $("mute").setAttribute("aria-pressed", on ? "true" : "false");
  $("mute").textContent = on ? "Microphone muted: unmute" : "Mute microphone";
}
$("mute").onclick = () => {
  if (!current) return;
  const on = !current.muted;
  vg.mute(current.id, on);
  setMuted(on);
  status(on ? "Your microphone is muted: the others do not hear you." : inCallText());
};

// The room numbers of the default dialplan are 8<digits>; anything else
// may still turn out to be a room (the participants message says so).
async function place(how, target) {
  error("");
  target = (target || "").trim();
  if (!target) { error(how === "join" ? "Type the room's number first." : "Type a number or a user first."); $("number").focus(); return; }
  if (!vg.connected) { error("Not connected to voxgate yet: wait a moment and try again."); return; }
  let stream;
  status(how === "join" ? "Opening the microphone to join room " + target + "…" : "Opening the microphone…");
  try { stream = await openMic(); }
  catch (err) { error(micError(err)); status("Ready to call"); return; }
  const call = how === "join" ? await vg.join(target, stream) : await vg.dial(target, stream);
  call.room = null;
  setInCall(call);
  status(how === "join" ? "Joining room " + target + "…" : "Calling " + target + "…");
}
$("call").onclick = () => place("dial", $("number").value);
$("join").onclick = () => place("join", vg.room || $("number").value);
$("hangup").onclick = () => {
  if (!current) return;
  const c = current;
  vg.hangup(c.id);
  setIdle();
  status(c.room ? "You left room " + c.room + "." : "You hung up" + (c.started ? " after " + fmtDur((Date.now() - c.started) / 1000) : "") + ".");
};

function inCallText() {
  if (!current) return "Ready to call";
  return current.room ? "In room " + current.room : "In a call with " + current.number;
}

// ---- the call timer ----
let timerT = null;
function fmtDur(s) { s = Math.floor(s); const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, ss = String(s % 60).padStart(2, "0"); return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + ss; }
function startTimer() {
  if (!current || current.started) return;
  current.started = Date.now();
  show("timer", true);
  const tick = () => { if (current && current.started) $("timer").textContent = fmtDur((Date.now() - current.started) / 1000); };
  tick(); timerT = setInterval(tick, 1000);
}
function stopTimer() { clearInterval(timerT); timerT = null; show("timer", false); $("timer").textContent = "0:00"; }

// ---- incoming calls ----
$("accept").onclick = async () => {
  const id = incoming, from = $("ringfrom").textContent;
  ringStop();
  error("");
  let stream;
  try { stream = await openMic(); }
  catch (err) { error(micError(err)); vg.reject(id); status("Ready to call"); return; }
  const call = await vg.accept(id, stream);
  call.number = from; call.room = null;
  setInCall(call);
  startTimer();
  status("In a call with " + from);
};
$("decline").onclick = () => { const from = $("ringfrom").textContent; vg.reject(incoming); ringStop(); status("You rejected the call from " + from + "."); };

// ---- the room ----
const people = new Map(); // leg id -> {name, kind, muted, talking, moderator}
function renderPeople() {
  const ul = $("people");
  ul.textContent = "";
  for (const [leg, p] of people) {
    const li = document.createElement("li");
    li.dataset.leg = leg;
    const talking = p.talking && !p.muted; // a muted leg's voice reaches nobody
    if (talking) li.className = "talking";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = p.name + (current && leg === vg.legOf(current.id) ? " (you)" : "");
    li.appendChild(name);
    const tag = (text, on) => { const s = document.createElement("span"); s.className = "tag" + (on ? " on" : ""); s.textContent = text; li.appendChild(s); };
    tag(p.kind === "browser" ? "browser" : "phone");
    if (p.moderator) tag("moderator");
    if (p.muted) tag("muted");
    if (talking) tag("talking", true);
    if (p.quality) { tag(p.quality); li.lastChild.classList.add("q"); }
    if (iModerate() && leg !== vg.legOf(current.id)) { // a moderator's controls over the others
      const act = (text, action, label) => {
        const b = document.createElement("button");
        b.type = "button"; b.className = "quiet small"; b.textContent = text; b.setAttribute("aria-label", label);
        b.onclick = () => { error(""); vg.send({type: "moderate", id: current.id, action, leg}); };
        li.appendChild(b);
      };
      act(p.muted ? "Unmute" : "Mute", p.muted ? "unmute" : "mute", (p.muted ? "Unmute " : "Mute ") + p.name);
      act("Remove", "kick", "Remove " + p.name + " from the room");
    }
    ul.appendChild(li);
  }
  show("roommod", iModerate());
  $("roomlock").textContent = roomLocked ? "Unlock the room" : "Lock the room";
  $("roomlock").setAttribute("aria-pressed", roomLocked ? "true" : "false");
  $("roomrecord").textContent = roomRecording ? "Stop recording" : "Record the room";
  $("roomrecord").setAttribute("aria-pressed", roomRecording ? "true" : "false");
}
let roomLocked = false, roomRecording = false;
// iModerate: the page's call moderates its room (it keyed the moderator PIN).
function iModerate() { const me = current && people.get(vg.legOf(current.id)); return !!(me && me.moderator); }
$("roomrecord").onclick = () => { if (current) { error(""); vg.send({type: "moderate", id: current.id, action: roomRecording ? "stop-recording" : "record"}); } };
$("roomlock").onclick = () => { if (current) { error(""); vg.send({type: "moderate", id: current.id, action: roomLocked ? "unlock" : "lock"}); } };
function person(m) { return {name: m.name, kind: m.kind || "phone", muted: !!m.muted, moderator: !!m.moderator, talking: false}; }
function roomEvent(m) {
  if (!current) return;
  if (!current.room) { // the call turned out to be a room
    current.room = m.room;
    if (!vg.room) loadHistory();
    $("hangup").textContent = "Leave the room";
    startTimer();
    status(inCallText());
  }
  show("roombox", true);
  $("roomname").textContent = m.room;
  if (m.type === "participants") {
    people.clear(); (m.people || []).forEach((p) => people.set(p.leg, person(p)));
    vg.send({type: "room-stats", id: current.id}); // now, then every 3 s
  }
  const p = m.leg && people.get(m.leg);
  if (m.type === "joined") people.set(m.leg, person(m));
  if (m.type === "left" || m.type === "kicked") people.delete(m.leg);
  if (p && m.type === "talking") p.talking = true;
  if (p && m.type === "stopped-talking") p.talking = false;
  if (p && (m.type === "muted" || m.type === "unmuted")) {
    p.muted = m.type === "muted";
    if (p.muted) p.talking = false;
    if (m.leg === vg.legOf(current.id) && !current.muted) // not the page's own mute button
      status(p.muted ? "A moderator muted you in room " + current.room + "." : "You can speak again in room " + current.room + ".");
  }
  if (m.type === "kicked" && m.leg === vg.legOf(current.id)) { current.kicked = true; status("A moderator removed you from room " + m.room + "."); }
  renderPeople();
}

// Each participant's reception as voxgate measures it, asked every 3 s.
setInterval(() => { if (current && current.room && vg.connected) vg.send({type: "room-stats", id: current.id}); }, 3000);
function roomStats(m) {
  roomLocked = !!m.locked; roomRecording = !!m.recording;
  for (const q of m.stats || []) {
    const p = people.get(q.leg);
    if (p) p.quality = q.codec + ", loss " + q.loss_pct.toFixed(1) + " %, jitter " + Math.round(q.jitter_ms) + " ms";
  }
  renderPeople();
}

// ---- quality: codec, loss, jitter, RTT and a MOS estimate, in words ----
const samples = [];
function mos(rttMs, jitterMs, lossPct) {
  const lat = rttMs / 2 + jitterMs * 2 + 10;
  let r = 93.2 - (lat < 160 ? lat / 40 : (lat - 120) / 10) - lossPct * 2.5;
  r = Math.max(0, Math.min(100, r));
  return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r);
}
function words(m) { return m >= 4.0 ? "excellent" : m >= 3.6 ? "good" : m >= 3.1 ? "fair" : m >= 2.6 ? "poor" : "bad"; }
function drawGraph() {
  const pts = samples.map((m, i) => (i * 120 / 29).toFixed(1) + "," + (30 - (m - 1) * 7).toFixed(1));
  $("graphline").setAttribute("points", pts.join(" "));
}
setInterval(async () => {
  if (!current || !current.pc) return;
  let rtt = null, jitter = 0, lossPct = 0, codec = "";
  const stats = await current.pc.getStats().catch(() => null);
  if (!stats) return;
  let codecId = null;
  stats.forEach((r) => {
    if (r.type === "candidate-pair" && r.nominated && r.currentRoundTripTime !== undefined) rtt = r.currentRoundTripTime * 1000;
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      jitter = (r.jitter || 0) * 1000;
      const total = (r.packetsReceived || 0) + (r.packetsLost || 0);
      lossPct = total ? 100 * (r.packetsLost || 0) / total : 0;
      codecId = r.codecId;
    }
  });
  if (codecId && stats.get(codecId)) {
    const c = stats.get(codecId);
    codec = (c.mimeType || "").replace("audio/", "") + ", " + Math.round((c.clockRate || 0) / 1000) + " kHz";
  }
  if (!codecId) return; // no audio yet
  if (rtt !== null) startTimer(); // media flows: the call is up
  const m = mos(rtt || 0, jitter, lossPct);
  samples.push(m); if (samples.length > 30) samples.shift();
  drawGraph();
  $("codec").textContent = "Codec: " + (codec || "unknown");
  $("quality").textContent = "Quality: " + words(m) + " (MOS " + m.toFixed(1) + " of 4.4) — loss " + lossPct.toFixed(1) +
    " %, jitter " + Math.round(jitter) + " ms, round trip " + (rtt === null ? "not measured yet" : Math.round(rtt) + " ms");
}, 2000);

// ---- messages from voxgate ----
vg.onevent = (m) => {
  if (m.type === "incoming") {
    if (current || incoming) { vg.reject(m.id); return; } // busy
    incoming = m.id;
    $("ringfrom").textContent = m.name;
    show("ring", true);
    status("Incoming call");
    ringStart();
    $("accept").focus();
    if (document.hidden && window.Notification && Notification.permission === "granted") {
      notice = new Notification("Incoming call", {body: m.name + " is calling", tag: "voxgate-ring", requireInteraction: true});
      notice.onclick = () => { window.focus(); notice.close(); };
    }
    return;
  }
  if (m.type === "ended" && m.id === incoming) { const from = $("ringfrom").textContent; ringStop(); status("Missed call from " + from + "."); loadHistory(); return; }
  if (["participants", "joined", "left", "kicked", "talking", "stopped-talking", "muted", "unmuted"].includes(m.type)) { if (current && m.id === current.id) roomEvent(m); return; }
  if (m.type === "track" && current && m.id === current.id) { $("remote").srcObject = m.stream; applySpeaker(); }
  if (m.type === "ringing" && current && m.id === current.id) status(current.number + " is ringing…");
  if (m.type === "answered" && current && m.id === current.id) { startTimer(); status(inCallText()); loadHistory(); }
  if (m.type === "state" && current && m.id === current.id && m.state === "connected" && !current.room && $("status").textContent.startsWith("Calling")) status("Connected to " + current.number);
  if (m.type === "ended" && current && m.id === current.id) {
    const c = current;
    setIdle();
    const text = c.kicked || m.reason === "removed by a moderator" ? "A moderator removed you from room " + c.room + "." : endedText(m, c.room ? null : c.number);
    if (m.code >= 400) { error(text); status("Ready to call"); } else status(text);
  }
  if (m.type === "error") {
    if (m.id && !(current && m.id === current.id)) return; // about a call that is over (a late candidate)
    if (current && !current.started && !current.room) { setIdle(); status("Ready to call"); } // the call was refused
    error(m.message); // else a refused action in the call (a digit, a moderation): the call goes on
  }
  if (m.type === "room-stats" && current && m.id === current.id) roomStats(m);
  if (m.type === "moderated" && current && m.id === current.id) {
    if (m.action === "record" || m.action === "stop-recording") { roomRecording = m.action === "record"; renderPeople(); status(roomRecording ? "Room " + current.room + " is being recorded." : "The recording of room " + current.room + " stopped."); }
    if (m.action === "lock" || m.action === "unlock") { roomLocked = m.action === "lock"; renderPeople(); status(roomLocked ? "You locked room " + current.room + ": nobody else can join." : "You unlocked room " + current.room + "."); }
  }
  if (m.type === "dtmf" && current && m.id === current.id) $("keyed").textContent = "The other side keyed " + m.digits;
  if (m.type === "disconnected") {
    if (incoming) ringStop();
    if (current) { setIdle(); status("The call was cut: the connection to voxgate was lost."); }
    if (signedIn && !leaving) reconnectLater();
  }
};

// ---- call history ----
function ago(t) {
  const s = (Date.now() - new Date(t)) / 1000;
  if (s < 60) return "just now";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return new Date(t).toLocaleDateString();
}
function refused(cause) {
  const st = cause && cause.status;
  return st === 404 || st === 604 ? " · not found" : st === 486 || st === 600 ? " · busy" : st === 603 ? " · declined" : st >= 400 ? " · failed (" + st + ")" : "";
}
async function loadHistory() {
  if (vg.room || !signedIn) return;
  let page;
  try {
    const r = await fetch("/api/v1/session/calls");
    if (!r.ok) { $("historyempty").textContent = r.status === 503 ? "voxgate keeps no call history (no data_dir)." : "The call history could not be read."; return; }
    page = await r.json();
  } catch (e) { return; }
  const ul = $("history");
  ul.textContent = "";
  const me = vg.user;
  for (const c of page.calls || []) {
    const out = c.caller === me;
    const other = out ? c.callee : c.caller;
    const li = document.createElement("li");
    const what = document.createElement("span");
    what.className = "what";
    const dur = c.answered && c.ended ? fmtDur((new Date(c.ended) - new Date(c.answered)) / 1000) : null;
    const kind = c.action === "room" || c.action === "pin" ? "room " + (c.room || other) : c.action === "echo" ? "echo test" : "";
    what.textContent = (out ? "To " : "From ") + other + (kind && kind !== "room " + other ? " (" + kind + ")" : "") + " · " + ago(c.started) +
      (c.status === "active" ? " · in progress" : dur ? " · " + dur : c.answered ? "" : refused(c.cause) || (out ? " · not answered" : " · missed"));
    li.appendChild(what);
    const b = document.createElement("button");
    b.type = "button"; b.className = "quiet";
    b.textContent = "Call again";
    b.setAttribute("aria-label", "Call " + other + " again");
    b.onclick = () => { if (current) return; $("number").value = other; place("dial", other); };
    li.appendChild(b);
    ul.appendChild(li);
  }
  show("historyempty", !(page.calls || []).length);
  $("historyempty").textContent = "No calls yet.";
}

// ---- a guest link (/?guest=<token>) ----
// Ask for a display name unless the link fixes one, sign in as a guest and
// join the link's room. The claims are read here only to show them;
// voxgate checks the signature.
function claims(token) {
  try {
    const bin = atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  } catch (e) { return null; }
}
async function guest(token) {
  const c = claims(token);
  if (!c || !c.room) { error("This guest link is damaged: ask for a new one."); return; }
  if (c.exp && c.exp * 1000 < Date.now()) { error("This guest link has expired: ask for a new one."); return; }
  const signIn = async (name) => {
    error("");
    if (!name) { error("Type your name first."); return; }
    try { await start(await vg.guestLogin(token, name)); } catch (err) { error(err.message); }
  };
  if (c.name) { await signIn(c.name); return; }
  $("guestroom").textContent = c.room;
  show("guestform", true);
  $("guestname").focus();
  $("guestform").onsubmit = (e) => { e.preventDefault(); signIn($("guestname").value.trim()); };
}

const guestToken = new URLSearchParams(location.search).get("guest");
if (guestToken) guest(guestToken);
else if (store.get("vg.signedIn")) { // ask only when a session may be there: no 401 on a first visit
  vg.session().then((u) => { if (u) start(u); else { store.set("vg.signedIn", null); show("login", true); } });
} else show("login", true);
window.addEventListener("online", () => { if (signedIn && !vg.connected) connect(); });
