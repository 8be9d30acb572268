// voxgate's browser client: sign-in, WebSocket signalling and one
// RTCPeerConnection per call. The page (app.js) uses it; so can others.
class Voxgate {
  constructor(base) {
    this.base = base || "";
    this.calls = {};
    this.onevent = () => {};
    this.seq = 0;
    this.inbox = Promise.resolve(); // messages are handled one at a time, in order
  }
  async login(user, password) {
    const r = await fetch(this.base + "/api/v1/login", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({user, password})});
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || r.statusText);
    this.iceServers = j.iceServers || [];
    this.user = j.user;
    return j.user;
  }
  // guestLogin signs in with a guest link's token as name (ignored when the
  // link fixes the name); the session may join the link's room only.
  async guestLogin(token, name) {
    const r = await fetch(this.base + "/api/v1/login", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({guest: token, name})});
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || r.statusText);
    this.iceServers = j.iceServers || [];
    this.user = j.user;
    this.room = j.room;
    return j.user;
  }
  async session() {
    const r = await fetch(this.base + "/api/v1/session");
    if (!r.ok) return null;
    const j = await r.json();
    this.iceServers = j.iceServers || [];
    this.user = j.user;
    this.room = j.room; // a guest's room
    return j.user;
  }
  async logout() { await fetch(this.base + "/api/v1/logout", {method: "POST"}); }
  // connect opens the WebSocket; a "disconnected" event tells when an open
  // one closes (the page may connect again).
  connect() {
    return new Promise((resolve, reject) => {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(proto + "//" + location.host + "/ws");
      this.ws = ws;
      let open = false;
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.type === "hello") this.legPrefix = m.leg || this.user;
        this.inbox = this.inbox.then(() => this.onmessage(m))
          .catch((err) => this.onevent({type: "error", id: m.id, message: String(err)}));
      };
      ws.onopen = () => { open = true; this.connected = true; resolve(); };
      ws.onerror = () => { if (!open) reject(new Error("the connection to voxgate failed")); };
      ws.onclose = () => {
        this.connected = false;
        for (const id of Object.keys(this.calls)) this.close(id); // voxgate ends them with the socket
        if (open) this.onevent({type: "disconnected"});
        else reject(new Error("the connection to voxgate failed"));
      };
    });
  }
  // legOf is the leg id voxgate gives one of this page's calls (the REST
  // API's and the room events' leg id).
  legOf(id) { return (this.legPrefix || this.user) + "/" + id; }
  send(m) { this.ws.send(JSON.stringify(m)); }
  // dial calls number with the microphone stream; returns the call.
  async dial(number, stream, opts) {
    return this.offer("dial", "c" + (++this.seq), number, stream, opts);
  }
  // join enters a room by its number (the dialplan decides, as for dial).
  async join(room, stream, opts) {
    return this.offer("join", "c" + (++this.seq), room, stream, opts);
  }
  // accept answers an incoming call (an "incoming" event's id).
  async accept(id, stream, opts) {
    return this.offer("answer", id, "", stream, opts);
  }
  reject(id) { this.send({type: "reject", id}); }
  async offer(type, id, number, stream, opts) {
    const pc = new RTCPeerConnection({iceServers: this.iceServers, iceTransportPolicy: (opts && opts.relay) ? "relay" : "all"});
    const call = {id, pc, number, remote: new MediaStream()};
    this.calls[id] = call;
    stream.getAudioTracks().forEach((t) => pc.addTrack(t, stream));
    pc.ontrack = (e) => { call.remote.addTrack(e.track); this.onevent({type: "track", id, track: e.track, stream: call.remote}); };
    pc.onicecandidate = (e) => { if (e.candidate) this.send({type: "candidate", id, candidate: e.candidate.toJSON()}); };
    pc.onconnectionstatechange = async () => {
      this.onevent({type: "state", id, state: pc.connectionState});
      if (pc.connectionState === "failed") this.restartIce(id); // e.g. the network changed
    };
    await pc.setLocalDescription(await pc.createOffer());
    const sdp = pc.localDescription.sdp;
    this.send(type === "dial" ? {type, id, number, sdp} : type === "join" ? {type, id, room: number, sdp} : {type, id, sdp});
    return call;
  }
  // restartIce renegotiates a call with fresh ICE credentials.
  async restartIce(id) {
    const c = this.calls[id];
    if (!c) return;
    await c.pc.setLocalDescription(await c.pc.createOffer({iceRestart: true}));
    this.send({type: "offer", id, sdp: c.pc.localDescription.sdp});
  }
  hangup(id) { this.send({type: "hangup", id}); this.close(id); }
  mute(id, on) {
    const c = this.calls[id];
    if (c) c.pc.getSenders().forEach((s) => { if (s.track) s.track.enabled = !on; });
    this.send({type: "mute", id, on});
  }
  close(id) { const c = this.calls[id]; if (c) { c.pc.close(); delete this.calls[id]; } }
  async onmessage(m) {
    const c = this.calls[m.id];
    if (m.type === "answer" && c) {
      await c.pc.setRemoteDescription({type: "answer", sdp: m.sdp});
      for (const cand of c.early || []) await c.pc.addIceCandidate(cand);
      c.early = [];
    }
    if (m.type === "candidate" && c) {
      // A candidate can only be added once the answer is set.
      if (c.pc.remoteDescription) await c.pc.addIceCandidate(m.candidate);
      else (c.early = c.early || []).push(m.candidate);
    }
    if (m.type === "ended" && c) this.close(m.id);
    this.onevent(m);
  }
}
