// Shared by every staff page: texts, the JSON API with CSRF, the live socket, small helpers.
// Everything a citizen or a colleague wrote is put on the page with textContent, never as HTML.
"use strict";

const UI = (() => {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  let strings = boot.strings;
  const renderers = [];

  function t(key, params) {
    let text = strings[key] ?? strings["ui." + key] ?? key;
    for (const [name, value] of Object.entries(params || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  function label(group, value) {
    if (value === null || value === undefined) return "";
    return strings[group + "." + value] ?? String(value);
  }

  function applyTexts(root) {
    (root || document).querySelectorAll("[data-i18n]").forEach((node) => {
      node.textContent = t(node.dataset.i18n);
    });
    (root || document).querySelectorAll("[data-i18n-placeholder]").forEach((node) => {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    });
    document.documentElement.lang = boot.locale;
    document.title = t("ui.title." + document.body.dataset.page, { hotline: boot.hotline });
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || "HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, body) {
    const url = "/api" + path + (path.includes("?") ? "&" : "?") + "lang=" + boot.locale;
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["X-CSRF-Token"] = boot.csrf || "";
      headers["Content-Type"] = "application/json";
    }
    const response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      // the API takes no blank body where an operation has one: send an empty object
      body: body === undefined ? (method === "GET" ? undefined : "{}") : JSON.stringify(body),
    });
    if (response.status === 401) {
      window.location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search);
      throw new ApiError(401, null);
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function notify(message, kind) {
    const box = document.getElementById("notice");
    if (!box) return;
    box.textContent = message;
    box.className = "notice " + (kind || "info");
  }

  function fail(error) {
    notify(t("ui.error.generic", { message: error.message }), "error");
  }

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return t("ui.time.seconds", { n: s });
    if (s < 3600) return t("ui.time.minutes", { n: Math.floor(s / 60), s: s % 60 });
    return t("ui.time.hours", { n: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return d.toLocaleString(boot.locale === "en" ? "en-GB" : "zh-CN", { hour12: false });
  }

  function pct(ratio) {
    if (!ratio || ratio.value === null || ratio.value === undefined) return t("ui.wall.no_data");
    return (ratio.value * 100).toFixed(1) + "%";
  }

  // The live socket: resumes its server-side event queue after a reconnect, and asks the
  // page to refetch everything when that queue is gone.
  function live(topics, onEvent, onRefetch) {
    let queueId = null;
    let lastEventId = 0;
    let socket = null;
    let retry = 500;
    const status = document.getElementById("live");
    function show(key) {
      if (status) {
        status.dataset.state = key;
        status.textContent = t("ui.live." + key);
      }
    }
    function connect() {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      let url = proto + "//" + location.host + "/ui/ws?topics=" + encodeURIComponent(topics.join(","));
      if (queueId) url += "&queue_id=" + queueId + "&last_event_id=" + lastEventId;
      socket = new WebSocket(url);
      socket.onmessage = (message) => {
        const frame = JSON.parse(message.data);
        if (frame.type === "hello") {
          queueId = frame.queue_id;
          if (!frame.resumed) lastEventId = Math.max(lastEventId, frame.last_event_id);
          retry = 500;
          show("connected");
        } else if (frame.type === "event") {
          lastEventId = frame.id;
          onEvent(frame.event, frame.data);
        } else if (frame.type === "refetch") {
          onRefetch();
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
    return { close: () => socket && socket.close() };
  }

  async function switchLanguage() {
    const next = boot.locale === "en" ? "zh-CN" : "en";
    const response = await fetch("/ui/lang", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf || "" },
      body: JSON.stringify({ locale: next }),
    });
    if (!response.ok) return;
    const data = await response.json();
    boot.locale = data.locale;
    strings = data.strings;
    applyTexts();
    renderers.forEach((render) => render());
  }

  function onLanguage(render) {
    renderers.push(render);
  }

  function header() {
    const langButton = document.getElementById("lang");
    if (langButton) langButton.addEventListener("click", switchLanguage);
    const who = document.getElementById("who");
    if (who && boot.user) who.textContent = boot.user.name;
    // links to pages this role may not open are not shown
    const role = boot.user ? boot.user.role : "";
    const pages = { "role-desk": ["agent", "supervisor"], "role-portal": ["department", "supervisor", "admin"], "role-wall": ["supervisor", "admin"] };
    for (const [cls, roles] of Object.entries(pages)) {
      document.querySelectorAll("a." + cls).forEach((a) => { a.hidden = !roles.includes(role); });
    }
    const csrfField = document.getElementById("logout-csrf");
    if (csrfField) csrfField.value = boot.csrf || "";
  }

  document.addEventListener("DOMContentLoaded", () => {
    applyTexts();
    header();
  });

  return { boot, t, label, el, clear, api, notify, fail, duration, when, pct, live, onLanguage, applyTexts };
})();
