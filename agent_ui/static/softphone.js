// The desk's softphone: when the agent holds a call (the call card is on screen), the
// browser bridges itself to it through Janus's SIP plugin (HotlineSipPhone, docs/calls.md)
// and plays the caller in #call-audio. Mute is local; hold and hang-up are the hotline's
// (the caller hears music on hold; the hotline ends the caller's line).
/* global HotlineSipPhone */
"use strict";

(() => {
  let phone = null; // { id, sip }
  let mediaDown = false;
  let shown = ""; // the phone's state, shown again when the card is drawn again

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"]; } catch (e) { return ""; }
  }

  async function api(method, path, body) {
    const r = await fetch("/api" + path, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = r.status === 204 ? {} : await r.json().catch(() => ({}));
    if (!r.ok) {
      const error = new Error((data.error && data.error.message) || String(r.status));
      error.status = r.status;
      throw error;
    }
    return data;
  }

  function card() { return document.getElementById("call-card"); }
  function status(key) {
    shown = key;
    const node = document.getElementById("call-status");
    if (node) { node.textContent = node.dataset[key] || ""; node.dataset.state = key; }
    const c = card();
    if (c) c.dataset.phone = key;
  }
  function showMediaDown(down) {
    mediaDown = down;
    const node = document.getElementById("call-media-down");
    if (node) node.hidden = !down;
  }

  function hangUpLocal() {
    if (phone && phone.sip) phone.sip.stop();
    phone = null;
  }

  async function connect(id) {
    status("connecting");
    const pending = { id: id, sip: null };
    phone = pending; // one leg per call, however often the page settles meanwhile
    let leg;
    try {
      leg = await api("POST", "/conversations/" + id + "/call/softphone");
    } catch (error) {
      if (error.status === 503) showMediaDown(true);
      status("lost");
      if (phone === pending) phone = null;
      return;
    }
    if (phone !== pending) return; // the page moved on to another conversation
    showMediaDown(false);
    const server = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + leg.server;
    const sip = new HotlineSipPhone({
      server: server, token: leg.token, uri: leg.uri, identity: leg.identity,
      onRemote: (stream) => {
        const audio = document.getElementById("call-audio");
        if (audio) { audio.srcObject = stream; audio.play().catch(() => {}); }
      },
      onEvent: (name) => {
        if (!phone || phone.sip !== sip) return;
        if (name === "connected") status(card() && card().dataset.held === "yes" ? "held" : "connected");
        else if (name === "hangup" || name === "closed") { status("ended"); phone = null; }
        else if (name === "lost" || name === "media_lost") { status("lost"); }
      },
    });
    pending.sip = sip;
    try {
      await sip.start();
    } catch (error) {
      status("lost");
      phone = null;
    }
  }

  function sync() {
    const c = card();
    if (!c || c.dataset.mine !== "yes" || c.dataset.ended === "yes") {
      if (phone && (!c || c.dataset.conversation !== phone.id)) hangUpLocal();
      if (c && c.dataset.ended === "yes") status("ended");
      return;
    }
    if (phone && phone.id === c.dataset.conversation) {
      if (shown) status(shown);
      showMediaDown(mediaDown);
      return;
    }
    hangUpLocal();
    connect(c.dataset.conversation);
  }

  // a supervisor listens in: a second, receive-only leg (the hotline mixes both sides
  // into it and passes nothing from it on)
  let listening = null; // { id, sip, button }
  function stopListening() {
    if (!listening) return;
    if (listening.sip) listening.sip.stop();
    listening.button.textContent = listening.button.dataset.on;
    listening = null;
  }
  async function listen(button) {
    const id = button.dataset.conversation;
    const again = listening && listening.id === id;
    stopListening();
    if (again) return;
    let leg;
    try { leg = await api("POST", "/conversations/" + id + "/call/listen"); } catch (e) { return; }
    const server = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + leg.server;
    const sip = new HotlineSipPhone({
      server: server, token: leg.token, uri: leg.uri, identity: leg.identity,
      onRemote: (stream) => {
        const audio = document.getElementById("listen-audio");
        if (audio) { audio.srcObject = stream; audio.play().catch(() => {}); }
      },
      onEvent: (name) => { if (name === "hangup" && listening && listening.sip === sip) stopListening(); },
    });
    listening = { id: id, sip: sip, button: button };
    button.textContent = button.dataset.off;
    try { await sip.start(); } catch (e) { stopListening(); }
  }

  document.addEventListener("click", async (event) => {
    const listenButton = event.target.closest("button.listen");
    if (listenButton) { await listen(listenButton); return; }
    const c = card();
    if (!c) return;
    const target = event.target.closest("button");
    if (!target) return;
    const id = c.dataset.conversation;
    if (target.id === "call-mute" && phone && phone.sip) {
      const muted = !phone.sip.muted;
      phone.sip.setMuted(muted);
      target.textContent = muted ? target.dataset.off : target.dataset.on;
      target.classList.toggle("on", muted);
    } else if (target.id === "call-hold") {
      const hold = c.dataset.held !== "yes";
      await api("POST", "/conversations/" + id + "/call/hold", { on_hold: hold });
      c.dataset.held = hold ? "yes" : "no";
      target.textContent = hold ? target.dataset.off : target.dataset.on;
      status(hold ? "held" : "connected");
    } else if (target.id === "call-hangup") {
      await api("POST", "/conversations/" + id + "/call/hangup");
      c.dataset.ended = "yes";
      hangUpLocal();
      status("ended");
      const buttons = document.getElementById("call-buttons");
      if (buttons) buttons.hidden = true;
    } else if (target.dataset.dtmf && phone && phone.sip) {
      phone.sip.dtmf(target.dataset.dtmf);
    }
  });

  function me() {
    try { return JSON.parse(document.getElementById("boot").textContent).user.id; } catch (e) { return null; }
  }

  // a call given to this agent (a transfer from another agent) opens at once: the caller
  // is bridged as soon as the softphone connects
  function openCall(id) {
    const c = card();
    if (c && c.dataset.conversation === String(id)) return;
    if (window.htmx) {
      window.htmx.ajax("GET", "/ui/desk/conversations/" + id, { target: "#conversation", swap: "innerHTML" });
      history.replaceState(null, "", "/ui/desk?c=" + id);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.body.addEventListener("live-event", (event) => {
      const d = event.detail;
      if (d.event === "conversation.changed" && d.data.kind === "call" && d.data.state === "assigned"
          && d.data.agent_id === me() && !(phone && phone.id === String(d.data.conversation_id))) {
        openCall(d.data.conversation_id);
      }
      if (d.event === "media.changed") {
        showMediaDown(!d.data.healthy);
        if (d.data.healthy && card() && !phone) sync();
      }
    });
    sync();
  });
  document.addEventListener("htmx:afterSettle", sync);
  window.addEventListener("beforeunload", hangUpLocal);
})();
