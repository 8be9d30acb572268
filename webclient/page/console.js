// The moderator console: every room, live, with an operator's API token
// (admin scope) over the REST API. It shares the page's globals (app.js).
"use strict";
let modToken = null, modTimer = null;
async function api(method, path, body) {
  const r = await fetch("/api/v1" + path, {method, headers: Object.assign({Authorization: "Bearer " + modToken}, body ? {"Content-Type": "application/json"} : {}),
    body: body ? JSON.stringify(body) : undefined});
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}
const enc = encodeURIComponent;
function modRestore() { let t = null; try { t = sessionStorage.getItem("vg.modtoken"); } catch (e) { /* none */ } if (t) modOpen(t); }
async function modOpen(token) {
  modToken = token;
  try { await modRefresh(); }
  catch (err) { modToken = null; error("The moderator console did not open: " + err.message); return; }
  try { sessionStorage.setItem("vg.modtoken", token); } catch (e) { /* none */ }
  show("modlogin", false); show("modpanel", true); $("moddetails").open = true;
  $("modtoken").value = "";
  clearInterval(modTimer); modTimer = setInterval(() => modRefresh().catch((err) => { $("modstate").textContent = "Could not refresh: " + err.message; }), 2000);
}
$("modlogin").onsubmit = (e) => { e.preventDefault(); error(""); const t = $("modtoken").value.trim(); if (!t) { error("Paste an API token first."); return; } modOpen(t); };
$("modclose").onclick = () => { modToken = null; modShape = ""; $("modrooms").textContent = ""; clearInterval(modTimer); try { sessionStorage.removeItem("vg.modtoken"); } catch (e) { /* none */ } show("modlogin", true); show("modpanel", false); };
let trunks = [], modShape = "";
const modId = (room) => "mr-" + room.replace(/[^A-Za-z0-9_-]/g, "_");
function roomLine(room) {
  const n = room.remote ? room.participants : room.legs.length;
  return "Room " + room.name + " · " + n + (n === 1 ? " person" : " people") + (room.locked ? " · locked" : "") + (room.recording ? " · recording" : "") +
    (room.remote ? " · on node " + room.node + " (manage it there)" : "");
}
function legLine(l) {
  const lossPct = l.packets_received ? 100 * l.packets_lost / (l.packets_received + l.packets_lost) : 0;
  return l.name + (l.talking && !l.muted ? " · talking" : "") + (l.moderator ? " · moderator" : "") + (l.waiting ? " · waiting for a moderator" : "") + (l.muted ? " · muted" : "") + (l.deaf ? " · deaf" : "") +
    " · " + l.codec + ", loss " + lossPct.toFixed(1) + " %, jitter " + Math.round(l.jitter_ms) + " ms";
}
async function modRefresh() {
  const rooms = await api("GET", "/rooms");
  const atPIN = await api("GET", "/pin-callers").catch(() => []);
  if (!trunks.length) trunks = (await api("GET", "/trunks").catch(() => [])).map((t) => t.name);
  $("modstate").textContent = "Live: " + rooms.length + (rooms.length === 1 ? " room" : " rooms") + ", updated " + new Date().toLocaleTimeString();
  show("modempty", rooms.length === 0 && atPIN.length === 0);
  const box = $("modrooms");
  // Rebuild the controls only when what they act on changed; otherwise
  // update the words in place (a rebuild under a pointer loses the click).
  const shape = JSON.stringify([trunks, atPIN.map((p) => [p.leg, p.room]), rooms.map((r) => [r.name, r.node, r.locked, !!r.recording, r.legs.map((l) => [l.id, l.name, l.muted, l.deaf, l.waiting, Math.round(l.gain_db || 0)])])]);
  if (shape !== modShape) {
    modShape = shape;
    const focused = document.activeElement && box.contains(document.activeElement) ? document.activeElement.id : null;
    const typed = {}; box.querySelectorAll("input").forEach((i) => { if (i.value && i.type !== "number") typed[i.id] = i.value; });
    const links = {}; box.querySelectorAll("[id$=-linkrow]").forEach((d) => { if (!d.classList.contains("hidden")) links[d.id] = true; });
    box.textContent = "";
    if (atPIN.length) box.appendChild(modPIN(atPIN));
    for (const room of rooms) box.appendChild(modRoom(room));
    for (const [id, v] of Object.entries(typed)) if ($(id)) $(id).value = v;
    for (const id of Object.keys(links)) if ($(id)) $(id).classList.remove("hidden");
    if (focused && $(focused)) $(focused).focus();
  } else {
    for (const room of rooms) {
      const div = $(modId(room.name));
      if (!div) continue;
      div.querySelector("h3").textContent = roomLine(room);
      for (const l of room.legs) {
        const n = div.querySelector(".modleg[data-leg=\"" + CSS.escape(l.id) + "\"] .name");
        if (n) n.textContent = legLine(l);
      }
    }
  }
}
function button(text, label, f) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = text; b.className = "quiet";
  if (label) b.setAttribute("aria-label", label);
  b.onclick = async () => { b.disabled = true; error(""); try { await f(); await modRefresh(); } catch (err) { error(err.message); } finally { b.disabled = false; } };
  return b;
}
// modPIN shows the callers keying a room's PIN, each with Admit (in
// without the PIN).
function modPIN(callers) {
  const div = document.createElement("div");
  div.className = "modroom"; div.id = "mr-pin";
  const h = document.createElement("h3");
  h.textContent = "Callers keying a PIN";
  div.appendChild(h);
  for (const p of callers) {
    const row = document.createElement("div");
    row.className = "modleg"; row.dataset.leg = p.leg;
    const n = document.createElement("span");
    n.className = "name";
    n.textContent = p.name + " · at the PIN of room " + p.room + " since " + new Date(p.since).toLocaleTimeString();
    row.appendChild(n);
    row.appendChild(button("Admit", "Let " + p.name + " into room " + p.room + " without the PIN", () => api("POST", "/rooms/" + enc(p.room) + "/legs/" + enc(p.leg) + "/admit")));
    div.appendChild(row);
  }
  return div;
}
function modRoom(room) {
  const div = document.createElement("div");
  div.className = "modroom";
  const id = modId(room.name);
  div.id = id;
  const h = document.createElement("h3");
  h.textContent = roomLine(room);
  div.appendChild(h);
  if (room.remote) return div; // another node of the cluster hosts it: its console acts on it
  const row = document.createElement("div");
  row.className = "row";
  row.appendChild(button(room.locked ? "Unlock" : "Lock", (room.locked ? "Unlock" : "Lock") + " room " + room.name, () => api("PATCH", "/rooms/" + enc(room.name), {locked: !room.locked})));
  row.appendChild(button(room.recording ? "Stop recording" : "Record", (room.recording ? "Stop recording" : "Start recording") + " room " + room.name, () => api("PATCH", "/rooms/" + enc(room.name), {recording: !room.recording})));
  row.appendChild(button("Guest link", "Make a guest link for room " + room.name, async () => {
    const g = await api("POST", "/rooms/" + enc(room.name) + "/guest-links", {ttl_seconds: 3600});
    const out = $(id + "-link");
    out.value = g.url;
    show(id + "-linkrow", true);
    out.select();
    if (navigator.clipboard) navigator.clipboard.writeText(g.url).then(() => { $(id + "-linkhelp").textContent = "Copied. Valid for one hour; anyone with it can join room " + room.name + "."; }, () => {});
  }));
  div.appendChild(row);
  const linkrow = document.createElement("div");
  linkrow.id = id + "-linkrow"; linkrow.className = "hidden";
  linkrow.innerHTML = "<label for=\"" + id + "-link\">Guest link</label><input id=\"" + id + "-link\" readonly><p class=\"small\" id=\"" + id + "-linkhelp\">Valid for one hour; anyone with it can join.</p>";
  div.appendChild(linkrow);
  for (const l of room.legs) {
    const leg = document.createElement("div");
    leg.className = "modleg";
    leg.dataset.leg = l.id;
    const n = document.createElement("span");
    n.className = "name";
    n.textContent = legLine(l);
    leg.appendChild(n);
    const path = "/rooms/" + enc(room.name) + "/legs/" + enc(l.id);
    leg.appendChild(button(l.muted ? "Unmute" : "Mute", (l.muted ? "Unmute " : "Mute ") + l.name, () => api("PATCH", path, {muted: !l.muted})));
    leg.appendChild(button(l.deaf ? "Undeafen" : "Deafen", (l.deaf ? "Let " + l.name + " hear again" : "Deafen " + l.name), () => api("PATCH", path, {deaf: !l.deaf})));
    const gid = id + "-gain-" + l.id.replace(/[^A-Za-z0-9_-]/g, "_");
    const gl = document.createElement("label"); gl.htmlFor = gid; gl.textContent = "Gain dB"; gl.className = "small";
    const gi = document.createElement("input"); gi.id = gid; gi.type = "number"; gi.min = -40; gi.max = 20; gi.step = 1; gi.value = Math.round(l.gain_db || 0);
    gi.onchange = () => api("PATCH", path, {gain_db: Number(gi.value)}).catch((err) => error(err.message));
    leg.appendChild(gl); leg.appendChild(gi);
    if (l.waiting) leg.appendChild(button("Admit", "Admit " + l.name + " now (without a moderator)", () => api("POST", path + "/admit")));
    const mid = id + "-move-" + l.id.replace(/[^A-Za-z0-9_-]/g, "_");
    const ml = document.createElement("label"); ml.htmlFor = mid; ml.textContent = "Move to room"; ml.className = "small";
    const mi = document.createElement("input"); mi.id = mid; mi.className = "moveto"; mi.autocomplete = "off";
    leg.appendChild(ml); leg.appendChild(mi);
    leg.appendChild(button("Move", "Move " + l.name + " to the room typed", async () => {
      const to = mi.value.trim();
      if (!to) throw new Error("Type the room to move " + l.name + " to.");
      await api("POST", path + "/move", {room: to});
      $("modstate").textContent = l.name + " moved to room " + to + ".";
    }));
    const kick = button("Remove", "Remove " + l.name + " from the room", () => api("DELETE", path));
    kick.classList.add("stop"); kick.classList.remove("quiet");
    leg.appendChild(kick);
    div.appendChild(leg);
  }
  const dial = document.createElement("form");
  dial.className = "numberrow";
  dial.innerHTML = "<label class=\"sr-only\" for=\"" + id + "-dial\">User or number to call into room " + room.name + "</label>" +
    "<input id=\"" + id + "-dial\" placeholder=\"call a user or number in\">" +
    "<label class=\"sr-only\" for=\"" + id + "-via\">How to call</label><select id=\"" + id + "-via\"><option value=\"\">a user</option>" +
    trunks.map((t) => "<option value=\"" + t.replace(/"/g, "") + "\">a number via " + t.replace(/</g, "") + "</option>").join("") + "</select>" +
    "<button class=\"quiet\">Call in</button>";
  dial.onsubmit = async (e) => {
    e.preventDefault(); error("");
    const who = $(id + "-dial").value.trim(), via = $(id + "-via").value;
    if (!who) { error("Type a user or a number to call into room " + room.name + "."); return; }
    try {
      await api("POST", "/rooms/" + enc(room.name) + "/dial", via ? {trunk: via, number: who} : {user: who});
      $(id + "-dial").value = "";
      $("modstate").textContent = "Calling " + who + " into room " + room.name + "…";
    } catch (err) { error(err.message); }
  };
  div.appendChild(dial);
  return div;
}

