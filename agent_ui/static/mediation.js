// The mediator's room page: polls /api/mediations/<id>, draws parties with their actions,
// and puts the mediator's own camera in the room once the session is open.
(function () {
  "use strict";
  const app = document.getElementById("app");
  const id = app.dataset.id;
  const T = JSON.parse(document.getElementById("texts").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = function (x) { return document.getElementById(x); };
  let room = null, current = null, timer = null;

  async function call(method, path, body) {
    const r = await fetch("/api/mediations/" + id + path, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await r.json().catch(function () { return {}; });
    if (!r.ok) throw new Error((data.error && data.error.message) || String(r.status));
    return data;
  }
  function banner(text) { $("banner").hidden = !text; $("banner").textContent = text || ""; }
  function button(label, action, cls) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = label; b.dataset.action = action;
    if (cls) b.className = cls;
    return b;
  }

  function draw(m) {
    current = m;
    $("state").textContent = m.state_label;
    $("when").textContent = m.scheduled_local;
    $("rec").textContent = m.recording ? T.recording_on : T.recording_off;
    $("rec").classList.toggle("on", m.recording);
    banner(m.media_up === false ? T.media_down : "");
    $("start").hidden = m.steps.indexOf("start") < 0;
    $("end-form").hidden = m.steps.indexOf("conclude") < 0;
    const body = $("parties");
    body.textContent = "";
    for (const p of m.parties) {
      const tr = document.createElement("tr");
      tr.dataset.party = String(p.id);
      tr.dataset.presence = p.presence;
      const presence = p.declined ? T.declined : (T[p.presence] || p.presence);
      const consent = p.consent === true ? T.consent_yes : p.consent === false ? T.consent_no : T.consent_none;
      for (const text of [p.name, p.role_label, presence, consent]) {
        const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      }
      const actions = document.createElement("td");
      if (m.state === "in_session" && p.presence === "waiting") actions.appendChild(button(T.admit, "admit"));
      if (m.state === "in_session" && p.presence === "in_room") {
        actions.appendChild(p.muted ? button(T.unmute, "unmute") : button(T.mute, "mute"));
        actions.appendChild(button(T.remove, "remove", "danger"));
      }
      tr.appendChild(actions);
      body.appendChild(tr);
    }
    const recs = m.recordings.filter(function (r) { return r.url; });
    $("recordings").hidden = !recs.length;
    $("recordings").textContent = "";
    for (const r of recs) {
      const a = document.createElement("a");
      a.href = r.url; a.textContent = T.recording_ready + " (" + Math.round(r.duration_seconds) + " s)";
      $("recordings").appendChild(a);
    }
    if (m.state === "in_session" && app.dataset.mediator === "yes" && !room) enter();
    if (m.state !== "in_session" && room) { room.stop(); room = null; $("room").hidden = true; }
  }

  async function refresh() {
    try { draw(await call("GET", "")); } catch (e) { banner(e.message); }
  }

  async function enter() {
    const j = await call("GET", "/media");
    $("room").hidden = false;
    const server = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + j.server;
    room = new window.HotlineVideoRoom({
      server: server, token: j.token, room: j.room, pin: j.pin, display: j.display,
      onLocal: function (s) { $("local").srcObject = s; },
      onFeed: function (fid, display, stream) {
        let v = document.querySelector('video[data-feed="' + fid + '"]');
        if (!v) {
          const fig = document.createElement("figure"); fig.className = "feed";
          v = document.createElement("video"); v.autoplay = true; v.playsInline = true;
          v.dataset.feed = String(fid); v.dataset.label = display || "";
          const cap = document.createElement("figcaption"); cap.textContent = display || "";
          fig.appendChild(v); fig.appendChild(cap); $("feeds").appendChild(fig);
        }
        if (v.srcObject !== stream) v.srcObject = stream;
        v.play().catch(function () {});
      },
      onFeedGone: function (fid) {
        const v = document.querySelector('video[data-feed="' + fid + '"]');
        if (v) v.parentNode.remove();
      },
      onEvent: function (name) {
        if (name === "lost" || name === "closed") {
          if (room) { room.stop(); room = null; }
          setTimeout(refresh, 1500);  // the next draw enters again
        }
      },
    });
    room.start().catch(function () { banner(T.join_error); room = null; });
  }

  $("parties").addEventListener("click", async function (e) {
    const b = e.target.closest("button");
    if (!b) return;
    const party = b.closest("tr").dataset.party;
    const action = b.dataset.action;
    if (action === "remove" && !window.confirm(T.confirm_remove)) return;
    try {
      if (action === "admit" || action === "remove") draw(await call("POST", "/parties/" + party + "/" + action));
      if (action === "mute" || action === "unmute") {
        draw(await call("POST", "/parties/" + party + "/mute", { mute: action === "mute" }));
      }
    } catch (err) { banner(err.message); }
  });
  $("start").addEventListener("click", async function () {
    try { draw(await call("POST", "/start")); } catch (err) { banner(err.message); }
  });
  $("end").addEventListener("click", async function () {
    if (!window.confirm(T.confirm_end)) return;
    try {
      draw(await call("POST", "/conclude", { outcome: $("outcome").value, agreement_text: $("agreement").value }));
      $("end-error").hidden = true;
    } catch (err) { $("end-error").hidden = false; $("end-error").textContent = err.message; }
  });
  window.__mediatorPage = { refresh: refresh, get room() { return room; } };
  refresh();
  timer = setInterval(refresh, 2000);
  void timer;
})();
