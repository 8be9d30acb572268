// The page: sign-in, a dial pad, call controls and status.
const vg = new Voxgate();
const $ = (id) => document.getElementById(id);
let current = null;
const status = (s) => { $("status").textContent = s; };
const error = (s) => { $("error").textContent = s || ""; };

async function start(user) {
  $("me").textContent = user;
  $("login").classList.add("hidden");
  $("phone").classList.remove("hidden");
  await vg.connect();
  status("ready");
}

vg.onevent = (m) => {
  if (m.type === "track") $("remote").srcObject = m.stream;
  if (m.type === "answered") status("in call with " + current.number);
  if (m.type === "ringing") status("ringing");
  if (m.type === "ended") { status("call ended: " + (m.reason || "")); setIdle(); }
  if (m.type === "error") error(m.message);
  if (m.type === "disconnected") error("The connection to voxgate dropped. Reload the page.");
};

function setIdle() { current = null; $("call").disabled = false; $("hangup").disabled = true; $("mute").disabled = true; }

$("login").onsubmit = async (e) => {
  e.preventDefault();
  error("");
  try { await start(await vg.login($("user").value, $("password").value)); } catch (err) { error(err.message); }
};
$("logout").onclick = async () => { await vg.logout(); location.reload(); };
$("call").onclick = async () => {
  error("");
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({audio: true}); }
  catch (err) { error("The microphone was refused: " + err.message); return; }
  current = await vg.dial($("number").value, stream);
  $("call").disabled = true; $("hangup").disabled = false; $("mute").disabled = false;
  status("calling " + current.number);
};
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
vg.session().then((u) => { if (u) start(u); });
