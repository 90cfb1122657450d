// The citizen web chat widget. Embed with one tag:
//   <script src="https://<hotline>/chat/widget.js" async></script>
// It draws itself in a shadow root (no clash with the page's styles), talks to
// /chat/ws on the server it was loaded from, keeps its session in localStorage,
// resends unacknowledged messages after a reconnect (the server stores each once)
// and shows every text with textContent (never as HTML).
(function () {
  "use strict";
  var STRINGS = __STRINGS__;
  var HOTLINE = __HOTLINE__;
  var script = document.currentScript;
  var base = new URL(script && script.src ? script.src : "/chat/widget.js", location.href);
  var origin = base.origin;
  var store = window.localStorage;
  var KEY = "hotline-chat:" + origin;
  var saved = {};
  try { saved = JSON.parse(store.getItem(KEY) || "{}"); } catch (e) { saved = {}; }
  var locale = (script && script.dataset.lang) || saved.locale ||
    ((navigator.language || "zh").toLowerCase().indexOf("zh") === 0 ? "zh-CN" : "en");
  var state = { session: saved.session || null, lastId: 0, seen: {}, pending: [], socket: null,
    retry: 500, open: false, conversationState: null, queue: null };

  function t(key, params) {
    var text = (STRINGS[locale] && STRINGS[locale][key]) || key;
    params = params || {};
    params.hotline = HOTLINE;
    Object.keys(params).forEach(function (k) { text = text.split("{" + k + "}").join(String(params[k])); });
    return text;
  }
  function save() { store.setItem(KEY, JSON.stringify({ session: state.session, locale: locale })); }
  function newId() {
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10) + Math.random().toString(36).slice(2, 6);
  }
  function node(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  var host = node("div");
  host.id = "hotline-chat";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var css = node("link");
  css.rel = "stylesheet";
  css.href = origin + "/chat/widget.css";
  root.appendChild(css);
  var launcher = node("button", "launcher");
  launcher.id = "hc-open";
  var panel = node("div", "panel");
  panel.hidden = true;
  var head = node("div", "head");
  var title = node("strong", "title");
  var lang = node("button", "lang");
  var minimise = node("button", "min", "–");
  head.append(title, lang, minimise);
  var details = node("div", "details");
  var nameInput = node("input");
  nameInput.id = "hc-name"; nameInput.maxLength = 100;
  var phoneInput = node("input");
  phoneInput.id = "hc-phone"; phoneInput.maxLength = 32; phoneInput.type = "tel";
  details.append(nameInput, phoneInput);
  var list = node("div", "messages");
  list.id = "hc-messages";
  list.setAttribute("aria-live", "polite");
  var status = node("div", "status");
  status.id = "hc-status";
  var leave = node("button", "leave");
  leave.id = "hc-leave"; leave.hidden = true;
  var form = node("form", "compose");
  var input = node("textarea");
  input.id = "hc-input"; input.rows = 2; input.maxLength = 4000;
  var send = node("button", "send");
  send.id = "hc-send"; send.type = "submit";
  form.append(input, send);
  var foot = node("div", "foot");
  var end = node("button", "end");
  end.id = "hc-end";
  var statusLink = node("a", "link");
  statusLink.href = origin + "/status";
  statusLink.target = "_blank";
  foot.append(end, statusLink);
  panel.append(head, details, list, status, leave, form, foot);
  root.append(launcher, panel);

  function texts() {
    launcher.textContent = t("widget.open");
    title.textContent = t("widget.title");
    lang.textContent = t("widget.lang");
    minimise.title = t("widget.minimise");
    nameInput.placeholder = t("widget.name");
    phoneInput.placeholder = t("widget.phone");
    input.placeholder = t("widget.placeholder");
    send.textContent = t("widget.send");
    leave.textContent = t("widget.leave_message");
    end.textContent = t("widget.close");
    statusLink.textContent = t("widget.status_link");
    showState();
  }

  function addMessage(m) {
    if (state.seen[m.id]) return;
    state.seen[m.id] = true;
    state.lastId = Math.max(state.lastId, m.id);
    var pendingNode = m.clientId ? list.querySelector('[data-client="' + m.clientId + '"]') : null;
    var item = pendingNode || node("div", "msg " + (m.direction === "in" ? "mine" : "theirs"));
    item.classList.remove("pending");
    item.dataset.id = m.id;
    if (!pendingNode) {
      item.appendChild(node("span", "who", m.direction === "in" ? t("widget.you") : t("widget.hotline")));
      item.appendChild(node("p", "body", m.body));
      list.appendChild(item);
    }
    list.scrollTop = list.scrollHeight;
  }

  function showState() {
    var s = state.conversationState;
    leave.hidden = s !== "queued";
    if (s === "queued" && state.queue && state.queue.position) {
      status.textContent = t("widget.queued", { position: state.queue.position, ahead: Math.max(0, state.queue.position - 1) });
    } else if (s === "queued") status.textContent = t("widget.queued_wait");
    else if (s === "assigned") status.textContent = t("widget.assigned");
    else if (s === "closed") status.textContent = t("widget.closed");
    else status.textContent = "";
  }

  function transmit(frame) {
    if (state.socket && state.socket.readyState === 1) state.socket.send(JSON.stringify(frame));
  }

  function connect() {
    var url = origin.replace(/^http/, "ws") + "/chat/ws";
    var socket = new WebSocket(url);
    state.socket = socket;
    socket.onopen = function () {
      transmit({ type: "hello", session: state.session, after: state.lastId, locale: locale });
    };
    socket.onmessage = function (event) {
      var f = JSON.parse(event.data);
      if (f.type === "welcome") {
        state.session = f.session; save(); state.retry = 500;
        f.messages.forEach(addMessage);
        state.pending.forEach(function (p) { transmit(p); });  // stored once, whatever happens
        if (status.dataset.offline) { delete status.dataset.offline; showState(); }
      } else if (f.type === "ack") {
        state.pending = state.pending.filter(function (p) { return p.id !== f.id; });
        var mine = list.querySelector('[data-client="' + f.id + '"]');
        if (mine && state.seen[f.message_id]) { mine.remove(); }
        else if (mine) { mine.classList.remove("pending"); mine.dataset.id = f.message_id; state.seen[f.message_id] = true; }
        state.lastId = Math.max(state.lastId, f.message_id);
      } else if (f.type === "message") {
        addMessage(f.message);
      } else if (f.type === "state") {
        state.conversationState = f.state;
        state.queue = f.state === "queued" ? { position: f.position || (state.queue && state.queue.position) || null } : null;
        showState();
      } else if (f.type === "ticket") {
        status.textContent = t("widget.ticket", { number: f.number });
        leave.hidden = true;
        state.conversationState = "closed";
      } else if (f.type === "error") {
        status.textContent = f.message || f.code;
      }
    };
    socket.onclose = function () {
      status.dataset.offline = "1";
      status.textContent = t("widget.reconnecting");
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 10000);
    };
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    var frame = { type: "message", id: newId(), text: text };
    if (nameInput.value.trim()) frame.name = nameInput.value.trim();
    if (phoneInput.value.trim()) frame.phone = phoneInput.value.trim();
    var item = node("div", "msg mine pending");
    item.dataset.client = frame.id;
    item.appendChild(node("span", "who", t("widget.you")));
    item.appendChild(node("p", "body", text));
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
    state.pending.push(frame);
    transmit(frame);
    input.value = "";
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });
  leave.addEventListener("click", function () { transmit({ type: "leave_message", id: newId() }); });
  end.addEventListener("click", function () { transmit({ type: "close" }); });
  lang.addEventListener("click", function () { locale = locale === "en" ? "zh-CN" : "en"; save(); texts(); });
  launcher.addEventListener("click", function () {
    panel.hidden = false; launcher.hidden = true;
    if (!state.socket) connect();
    input.focus();
  });
  minimise.addEventListener("click", function () { panel.hidden = true; launcher.hidden = false; });

  texts();
  (document.body || document.documentElement).appendChild(host);
  window.HotlineChat = { open: function () { launcher.click(); } };
})();
