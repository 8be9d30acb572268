// The page: sign-in, a dial pad, call controls and status.
const vg = new Voxgate();
const $ = (id) => document.getElementById(id);
let current = null;
const status = (s) => { $("status").textContent = s; };
const error = (s) => { $("error").textContent = s || ""; };

async function start(user) {
  $("me").textContent = user;
  $("login").classList.add("hidden");
  $("guestform").classList.add("hidden");
  $("phone").classList.remove("hidden");
  await vg.connect();
  status("ready");
  if (vg.room) { // a guest: its room only, at once
    $("dialer").classList.add("hidden");
    $("pad").classList.add("hidden");
    $("logout").textContent = "Leave";
    await place("join", vg.room);
  }
}

// Room participants with a talking indicator.
const people = new Map();
function renderPeople() {
  const ul = $("people");
  ul.textContent = "";
  for (const [name, talking] of people) {
    const li = document.createElement("li");
    li.textContent = name;
    if (talking) li.className = "talking";
    ul.appendChild(li);
  }
}
function roomEvent(m) {
  $("roombox").classList.remove("hidden");
  $("roomname").textContent = m.room;
  if (m.type === "participants") { people.clear(); (m.names || []).forEach((n) => people.set(n, false)); }
  if (m.type === "joined") people.set(m.name, false);
  if (m.type === "left" || m.type === "kicked") people.delete(m.name);
  if (m.type === "talking") people.set(m.name, true);
  if (m.type === "stopped-talking") people.set(m.name, false);
  renderPeople();
}

// Live call quality from the browser's own statistics.
setInterval(async () => {
  if (!current) { $("quality").textContent = ""; return; }
  let rtt = "-", jitter = "-", lost = "-";
  (await current.pc.getStats()).forEach((r) => {
    if (r.type === "candidate-pair" && r.nominated && r.currentRoundTripTime !== undefined) rtt = Math.round(r.currentRoundTripTime * 1000) + " ms";
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      jitter = Math.round((r.jitter || 0) * 1000) + " ms";
      const total = (r.packetsReceived || 0) + (r.packetsLost || 0);
      lost = total ? (100 * (r.packetsLost || 0) / total).toFixed(1) + " %" : "0 %";
    }
  });
  $("quality").textContent = "RTT " + rtt + ", jitter " + jitter + ", loss " + lost;
}, 2000);

// Incoming calls ring the page.
let incoming = null;
function ringStop() { incoming = null; $("ring").classList.add("hidden"); }
$("accept").onclick = async () => {
  const id = incoming; ringStop();
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({audio: true}); }
  catch (err) { error("The microphone was refused: " + err.message); vg.reject(id); return; }
  current = await vg.accept(id, stream);
  current.number = $("ringfrom").textContent;
  $("call").disabled = true; $("hangup").disabled = false; $("mute").disabled = false;
  status("in call with " + current.number);
};
$("decline").onclick = () => { vg.reject(incoming); ringStop(); status("call rejected"); };

vg.onevent = (m) => {
  if (m.type === "incoming") {
    if (current) { vg.reject(m.id); return; } // busy
    incoming = m.id; $("ringfrom").textContent = m.name; $("ring").classList.remove("hidden"); status("ringing");
  }
  if (m.type === "ended" && m.id === incoming) { ringStop(); status("missed call from " + $("ringfrom").textContent); }
  if (["participants", "joined", "left", "kicked", "talking", "stopped-talking"].includes(m.type)) roomEvent(m);
  if (m.type === "track") $("remote").srcObject = m.stream;
  if (m.type === "answered") status("in call with " + current.number);
  if (m.type === "ringing") status("ringing");
  if (m.type === "ended") { status("call ended: " + (m.reason || "")); setIdle(); }
  if (m.type === "error") error(m.message);
  if (m.type === "disconnected") error("The connection to voxgate dropped. Reload the page.");
};

function setIdle() { people.clear(); renderPeople(); $("roombox").classList.add("hidden"); current = null; $("call").disabled = false; $("join").disabled = false; $("hangup").disabled = true; $("mute").disabled = true; }

$("login").onsubmit = async (e) => {
  e.preventDefault();
  error("");
  try { await start(await vg.login($("user").value, $("password").value)); } catch (err) { error(err.message); }
};
$("logout").onclick = async () => {
  await vg.logout();
  if (vg.room) { $("phone").classList.add("hidden"); status("You left room " + vg.room + "."); return; } // reloading would sign in again
  location.reload();
};
// place starts a call (dial a number) or joins a room (join a room number).
async function place(how, target) {
  error("");
  if (!target) { error("Type a number first."); return; }
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({audio: true}); }
  catch (err) { error("The microphone was refused: " + err.message); return; }
  current = how === "join" ? await vg.join(target, stream) : await vg.dial(target, stream);
  $("call").disabled = true; $("join").disabled = true; $("hangup").disabled = false; $("mute").disabled = false;
  status((how === "join" ? "joining room " : "calling ") + current.number);
}
$("call").onclick = () => place("dial", $("number").value);
$("join").onclick = () => place("join", $("room").value);
$("hangup").onclick = () => { if (current) vg.hangup(current.id); setIdle(); status("hung up"); };
$("mute").onclick = () => {
  if (!current) return;
  current.muted = !current.muted;
  vg.mute(current.id, current.muted);
  $("mute").textContent = current.muted ? "Unmute" : "Mute";
};
for (const d of "123456789*0#") {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = d;
  b.onclick = () => { if (current) vg.send({type: "dtmf", id: current.id, digits: d}); else $("number").value += d; };
  $("pad").appendChild(b);
}
// A guest link (/?guest=<token>): ask for a display name unless the link
// fixes one, sign in as a guest and join the link's room. The claims are
// read here only to show them; voxgate checks the signature.
function claims(token) {
  try {
    const bin = atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  } catch (e) { return null; }
}
async function guest(token) {
  const c = claims(token);
  $("login").classList.add("hidden");
  if (!c || !c.room) { error("This guest link is damaged: ask for a new one."); return; }
  if (c.exp && c.exp * 1000 < Date.now()) { error("This guest link has expired: ask for a new one."); return; }
  const signIn = async (name) => {
    error("");
    try { await start(await vg.guestLogin(token, name)); } catch (err) { error(err.message); }
  };
  if (c.name) { await signIn(c.name); return; }
  $("guestroom").textContent = c.room;
  $("guestform").classList.remove("hidden");
  $("guestform").onsubmit = (e) => { e.preventDefault(); signIn($("guestname").value.trim()); };
}
const guestToken = new URLSearchParams(location.search).get("guest");
if (guestToken) guest(guestToken);
else vg.session().then((u) => { if (u) start(u); });
