// Shared by every staff page. The pages are rendered on the server (Jinja2) and their live
// parts are htmx fragments; this script only does what a server cannot:
//  - the staff websocket, whose events become DOM events on <body> ("live-ticket",
//    "live-ticket-42", "live-message-7", ...) that fragments name in their hx-trigger;
//  - counters that move every second ([data-since], [data-until]);
//  - drafts: what is typed into a [data-draft] field is kept in sessionStorage until its
//    form succeeds, so a failed step, a reload or a language switch loses nothing;
//  - small conveniences: auto-submitting selects, scrolling message lists, text counters.
// Nothing here builds HTML from data: the server escapes everything it renders.
"use strict";

const UI = (() => {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const strings = boot.strings || {};
  // the server's clock: a PC whose clock is off still counts waiting times right
  const skew = boot.now ? Date.parse(boot.now) - Date.now() : 0;
  const serverNow = () => Date.now() + skew;

  function t(key, params) {
    let text = strings[key] ?? key;
    for (const [name, value] of Object.entries(params || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return t("ui.time.seconds", { n: s });
    if (s < 3600) return t("ui.time.minutes", { n: Math.floor(s / 60), s: s % 60 });
    return t("ui.time.hours", { n: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  }

  function fire(name, detail) {
    document.body.dispatchEvent(new CustomEvent(name, { detail, bubbles: false }));
  }

  // Fragments refetch on these; a burst of events becomes one refetch, at most 250 ms after
  // the first event of the burst (never dropped, as htmx's own throttle would).
  const pending = new Map();
  function fireSoon(name, detail) {
    if (pending.has(name)) { pending.set(name, detail); return; }
    pending.set(name, detail);
    setTimeout(() => { const last = pending.get(name); pending.delete(name); fire(name, last); }, 250);
  }

  // --- counters -------------------------------------------------------------------------
  function tick() {
    const now = serverNow();
    document.querySelectorAll("[data-since]").forEach((node) => {
      node.textContent = duration((now - Date.parse(node.dataset.since)) / 1000);
    });
    document.querySelectorAll("[data-until]").forEach((node) => {
      const left = Math.max(0, Math.round((Date.parse(node.dataset.until) - now) / 1000));
      node.textContent = node.dataset.format ? t(node.dataset.format, { seconds: left }) : duration(left);
    });
  }

  // --- the live socket --------------------------------------------------------------------
  const EVENTS = {
    "ticket.changed": (d) => ["live-ticket", "live-ticket-" + d.ticket_id],
    "message.created": (d) => ["live-message", "live-message-" + d.conversation_id],
    "conversation.changed": (d) => ["live-conversation", "live-conversation-" + d.conversation_id],
    "agent.changed": () => ["live-agent"],
    "offer.changed": () => ["live-offer"],
  };

  function live(topics) {
    let queueId = null;
    let lastEventId = 0;
    let retry = 500;
    const status = document.getElementById("live");
    function show(key) {
      if (!status) return;
      status.dataset.state = key;
      status.textContent = t("ui.live." + key);
    }
    function connect() {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      let url = proto + "//" + location.host + "/ui/ws?topics=" + encodeURIComponent(topics.join(","));
      if (queueId) url += "&queue_id=" + queueId + "&last_event_id=" + lastEventId;
      const socket = new WebSocket(url);
      socket.onmessage = (message) => {
        const frame = JSON.parse(message.data);
        if (frame.type === "hello") {
          queueId = frame.queue_id;
          if (!frame.resumed) lastEventId = Math.max(lastEventId, frame.last_event_id);
          retry = 500;
          show("connected");
          if (!frame.resumed && frame.last_event_id) fire("live-refetch", {});
        } else if (frame.type === "event") {
          lastEventId = frame.id;
          fire("live-event", { event: frame.event, data: frame.data });
          const names = (EVENTS[frame.event] || (() => []))(frame.data);
          for (const name of names) fireSoon(name, frame.data);
          fireSoon("live-any", { event: frame.event, data: frame.data });
        } else if (frame.type === "refetch") {
          fire("live-refetch", {});
        } else if (frame.type === "heartbeat") {
          show("connected");
        }
      };
      socket.onclose = () => {
        show("reconnecting");
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 10000);
      };
    }
    connect();
  }

  // --- drafts -----------------------------------------------------------------------------
  const DRAFT = "hotline-draft:";
  function draftKey(field) {
    return DRAFT + location.pathname + ":" + field.dataset.draft;
  }
  function restoreDrafts(root) {
    root.querySelectorAll("[data-draft]").forEach((field) => {
      const saved = sessionStorage.getItem(draftKey(field));
      if (saved !== null && !field.value) field.value = saved;
      count(field);
    });
  }
  function clearDrafts(form) {
    form.querySelectorAll("[data-draft]").forEach((field) => sessionStorage.removeItem(draftKey(field)));
  }

  // --- a counter beside every field with a limit ------------------------------------------
  // Text is never cut: a field over its limit says by how much, and the server refuses it
  // with the same sentence (413) if it is sent anyway.
  function count(field) {
    const limit = Number(field.dataset.limit || field.getAttribute("maxlength") || 0);
    const box = field.id ? document.querySelector(`[data-count-for="${field.id}"]`) : null;
    if (!limit || !box) return;
    const over = field.value.length - limit;
    box.textContent = field.value.length + " / " + limit + (over > 0 ? " " + t("ui.form.over", { n: over }) : "");
    box.classList.toggle("over", over > 0);
    field.setAttribute("aria-invalid", over > 0 ? "true" : "false");
  }

  document.addEventListener("input", (event) => {
    const field = event.target;
    if (field.dataset && field.dataset.draft !== undefined) {
      sessionStorage.setItem(draftKey(field), field.value);
    }
    count(field);
  });

  document.addEventListener("change", (event) => {
    const field = event.target;
    if (field.matches && field.matches("[data-autosubmit]") && field.form) field.form.requestSubmit();
  });

  // A part marked data-live-refresh is not fetched again while someone works in it (a field
  // has the focus, a file is chosen, a choice in a list was made: drafts keep typed text
  // across a fetch, nothing keeps those): that would take their caret, file or choice away
  // just before they press the button. It is fetched when they leave it.
  function busy(part) {
    const active = document.activeElement;
    if (active && part.contains(active) && active.matches("input, textarea, select")) return true;
    if (Array.from(part.querySelectorAll("input[type=file]")).some((f) => f.files && f.files.length)) return true;
    return Array.from(part.querySelectorAll("select")).some(
      (s) => Array.from(s.options).some((o) => o.selected !== o.defaultSelected));
  }
  document.addEventListener("htmx:beforeRequest", (event) => {
    const part = event.detail.elt;
    if (!part.matches || !part.matches("[data-live-refresh]") || event.detail.requestConfig.verb !== "get") return;
    if (busy(part)) {
      event.preventDefault();
      part.dataset.stale = "1";
    }
  });
  document.addEventListener("focusout", () => {
    setTimeout(() => {
      document.querySelectorAll("[data-live-refresh][data-stale]").forEach((part) => {
        if (busy(part)) return;
        delete part.dataset.stale;
        htmx.trigger(part, "live-refetch-self");
      });
    }, 0);
  });

  // a form that succeeded forgets its drafts (before the swap: the form may leave the page)
  document.addEventListener("htmx:beforeSwap", (event) => {
    const elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    const form = elt && elt.closest && elt.closest("form");
    const verb = event.detail.requestConfig && event.detail.requestConfig.verb;
    if (form && verb !== "get" && event.detail.xhr.status < 300) clearDrafts(form);
  });

  // after any swap (an outerHTML swap's target is the element that left, so the whole
  // document is looked at)
  document.addEventListener("htmx:afterSettle", () => {
    restoreDrafts(document);
    scrollLists(document);
    tick();
  });

  function scrollLists(root) {
    const lists = root.matches && root.matches(".messages") ? [root] : root.querySelectorAll(".messages");
    lists.forEach((box) => { box.scrollTop = box.scrollHeight; });
  }

  // --- alerts: a sound, a count in the tab's title, and a desktop notification (the
  // browser's permission is asked once, from a button, as browsers require) -------------
  let unseen = 0;
  let baseTitle = "";
  function beep() {
    try {
      const audio = new (window.AudioContext || window.webkitAudioContext)();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.6);
    } catch (error) { /* no sound device: the title and the notification still say it */ }
  }
  function alertUser(title, body, tag) {
    beep();
    if (document.visibilityState !== "visible" || !document.hasFocus()) {
      unseen += 1;
      document.title = "(" + unseen + ") " + baseTitle;
    }
    if ("Notification" in window && Notification.permission === "granted") {
      try { new Notification(title, { body, tag }); } catch (error) { /* some browsers refuse */ }
    }
    document.body.dispatchEvent(new CustomEvent("hotline-alert", { detail: { title, body } }));
  }
  function seen() { unseen = 0; if (baseTitle) document.title = baseTitle; }
  window.addEventListener("focus", seen);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") seen(); });
  function permissionButton() {
    const button = document.getElementById("notify-permission");
    if (!button) return;
    button.hidden = !("Notification" in window) || Notification.permission !== "default"
      || localStorage.getItem("hotline-alerts-asked") === "1";
  }
  document.addEventListener("click", (event) => {
    if (!event.target.closest || !event.target.closest("#notify-permission")) return;
    localStorage.setItem("hotline-alerts-asked", "1");
    if ("Notification" in window) Notification.requestPermission().finally(permissionButton);
    permissionButton();
  });
  document.addEventListener("htmx:afterSettle", permissionButton);

  document.addEventListener("DOMContentLoaded", () => {
    baseTitle = document.title;
    permissionButton();
    document.body.addEventListener("live-event", (event) => {
      const { event: name, data } = event.detail;
      const me = boot.user ? boot.user.id : null;
      if (name === "offer.changed" && data.state === "pending" && data.agent_id === me) {
        alertUser(t("ui.desk.offer_alert"), "#" + data.conversation_id, "offer-" + data.offer_id);
      } else if (name === "ticket.changed" && document.body.dataset.page === "portal"
                 && (data.action === "dispatch" || data.action === "reopen")) {
        alertUser(t("ui.desk.dispatch_alert"), data.number, "ticket-" + data.ticket_id);
      }
    });
    document.querySelectorAll("[data-draft-done]").forEach((node) => {
      sessionStorage.removeItem(DRAFT + location.pathname + ":" + node.dataset.draftDone);
    });
    restoreDrafts(document);
    scrollLists(document);
    tick();
    setInterval(tick, 1000);
    const topics = document.body.dataset.topics;
    if (topics && boot.user) live(topics.split(","));
  });
  // the browser puts back what it remembers of a form after a reload, after the DOM is
  // ready; the drafts go in after that
  window.addEventListener("pageshow", () => restoreDrafts(document));

  return { boot, t, duration, fire, alertUser };
})();
