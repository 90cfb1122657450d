// The party's room page: device check, consent, waiting room, the room itself.
// Everything it may do comes from /m/<link>/api/state (the hotline decides; the page shows).
(function () {
  "use strict";
  const app = document.getElementById("app");
  const link = app.dataset.link;
  const T = JSON.parse(document.getElementById("texts").textContent);
  const $ = function (id) { return document.getElementById(id); };
  const api = function (what, body) {
    return fetch("/m/" + link + "/api/" + what, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
    });
  };
  let preview = null, room = null, joinedFeed = null, polling = null, over = false;
  let micOn = true, camOn = true, mutedByMediator = false, rejoining = false;

  function show(id) {
    for (const s of ["check", "waiting", "room", "over"]) $(s).hidden = s !== id;
  }
  function banner(text) { $("banner").hidden = !text; $("banner").textContent = text || ""; }
  function finish(key) {
    over = true;
    if (polling) clearInterval(polling);
    if (room) { room.stop(); room = null; }
    $("over-text").textContent = T[key] || key;
    banner("");
    show("over");
  }

  // ---- device check
  async function check() {
    try {
      preview = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      $("preview").srcObject = preview;
      const ctx = new AudioContext();
      const analyser = ctx.createAnalyser();
      ctx.createMediaStreamSource(preview).connect(analyser);
      const data = new Uint8Array(analyser.fftSize);
      const tick = function () {
        if (!preview) return;
        analyser.getByteTimeDomainData(data);
        let peak = 0;
        for (const v of data) peak = Math.max(peak, Math.abs(v - 128) / 128);
        $("level").value = peak;
        requestAnimationFrame(tick);
      };
      tick();
    } catch (e) {
      $("device-error").hidden = false;
      $("device-error").textContent = T.check_failed.replace("{error}", e.name || String(e));
    }
  }
  $("speaker").addEventListener("click", function () {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    osc.frequency.value = 660;
    osc.connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.6);
  });

  async function consent(yes) {
    if (preview) { for (const t of preview.getTracks()) t.stop(); preview = null; }
    const r = await api("enter", { consent: yes });
    if (!r.ok) { location.reload(); return; }
    show("waiting");
    poll();
    polling = setInterval(poll, 1000);
  }
  $("consent-yes").addEventListener("click", function () { consent(true); });
  $("consent-no").addEventListener("click", function () { consent(false); });

  // ---- the session's state
  async function poll() {
    if (over) return;
    let r;
    try { r = await api("state"); } catch (e) { banner(T.reconnecting); return; }
    if (r.status === 403 || r.status === 404 || r.status === 410) {
      const body = await r.json().catch(function () { return {}; });
      const code = body.error && body.error.code;
      finish(code === "removed" ? "removed" : code === "session_over" ? "ended" : "left");
      return;
    }
    if (!r.ok) { banner(T.reconnecting); return; }
    const s = await r.json();
    banner(s.media_up ? "" : T.media_down);
    if (s.state !== "scheduled" && s.state !== "in_session") { finish("ended"); return; }
    if (s.presence === "removed") { finish("removed"); return; }
    const rec = $("rec");
    rec.textContent = s.recording ? rec.dataset.on : rec.dataset.off;
    rec.classList.toggle("on", !!s.recording);
    if (s.presence === "waiting" || !s.janus) {
      if (room) { room.stop(); room = null; joinedFeed = null; }
      show("waiting");
      return;
    }
    show("room");
    if (s.muted !== mutedByMediator) {
      mutedByMediator = s.muted;
      banner(s.muted ? T.muted_by_mediator : "");
      $("mic").disabled = s.muted;
      if (room) room.setAudio(!s.muted && micOn);
    }
    if (!room || joinedFeed !== s.janus.feed) join(s.janus);
  }

  function join(j) {
    if (room) room.stop();
    joinedFeed = j.feed;
    const server = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + j.server;
    const me = new window.HotlineVideoRoom({
      server: server, token: j.token, room: j.room, pin: j.pin, display: j.display, feed: j.feed,
      onLocal: function (stream) { $("local").srcObject = stream; },
      onJoined: function () { rejoining = false; banner(mutedByMediator ? T.muted_by_mediator : ""); },
      onFeed: function (id, display, stream) {
        let v = document.querySelector('video[data-feed="' + id + '"]');
        if (!v) {
          const fig = document.createElement("figure");
          fig.className = "feed";
          v = document.createElement("video");
          v.autoplay = true; v.playsInline = true;
          v.dataset.feed = String(id); v.dataset.label = display || "";
          const cap = document.createElement("figcaption");
          cap.textContent = display || "";
          fig.appendChild(v); fig.appendChild(cap);
          $("feeds").appendChild(fig);
        }
        if (v.srcObject !== stream) v.srcObject = stream;
        v.play().catch(function () {});
      },
      onFeedGone: function (id) {
        const v = document.querySelector('video[data-feed="' + id + '"]');
        if (v) v.parentNode.remove();
      },
      onEvent: function (name, data) {
        app.dataset.lastEvent = name;
        if (name === "published") { room.setAudio(micOn && !mutedByMediator); room.setVideo(camOn); }
        if (name === "kicked") { poll(); return; }
        if (name === "destroyed") { poll(); return; }
        if (name === "moderated" && data.id === joinedFeed) {
          banner(data.muted ? T.muted_by_mediator : T.unmuted_by_mediator);
        }
        if ((name === "lost" || name === "closed" || name === "error") && !over) reconnect();
      },
    });
    room = me;
    me.start().catch(function () { if (!over && room === me) reconnect(); });
  }

  async function reconnect() {
    if (rejoining) return;
    rejoining = true;
    banner(T.reconnecting);
    if (room) { room.stop(); room = null; }
    joinedFeed = null;
    await new Promise(function (r) { setTimeout(r, 1500); });
    try { await api("rejoin"); } catch (e) { /* the next poll tries again */ }
    rejoining = false;
    poll();
  }

  $("mic").addEventListener("click", function () {
    micOn = !micOn;
    if (room) room.setAudio(micOn);
    this.textContent = micOn ? this.dataset.on : this.dataset.off;
    this.setAttribute("aria-pressed", String(!micOn));
  });
  $("cam").addEventListener("click", function () {
    camOn = !camOn;
    if (room) room.setVideo(camOn);
    this.textContent = camOn ? this.dataset.on : this.dataset.off;
    this.setAttribute("aria-pressed", String(!camOn));
  });
  $("leave").addEventListener("click", async function () {
    await api("leave");
    finish("left");
  });
  window.__roomPage = { poll: poll, reconnect: reconnect, get room() { return room; } };

  // back after a reload or a dropped connection: straight to the place held, if any
  (async function resume() {
    const r = await api("state").catch(function () { return null; });
    const s = r && r.ok ? await r.json() : null;
    if (s && s.consent !== null && (s.presence === "in_room" || s.presence === "waiting")) {
      show("waiting");
      poll();
      polling = setInterval(poll, 1000);
    } else {
      check();
    }
  })();
})();
