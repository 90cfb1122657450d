// The agent desk: presence, offers, the queue, the conversations I hold, the citizen's
// history across channels, replies, tickets, direct answers, transfers and wrap-up.
"use strict";

(() => {
  const { t, label, el, clear, api, notify, fail, duration, when } = UI;
  const state = { me: null, offers: [], mine: [], queue: [], options: null, selected: null,
    conversation: null, profile: null, categories: [], agents: [], point: null, grid: null };

  const $ = (id) => document.getElementById(id);
  const channelName = (c) => label("ui.channel", c);

  async function loadStatic() {
    [state.options, state.categories, state.agents] = await Promise.all([
      api("GET", "/acd/options"), api("GET", "/categories"), api("GET", "/acd/agents")]);
  }

  async function refresh() {
    try {
      const [me, queue] = await Promise.all([api("GET", "/acd/me"), api("GET", "/acd/queue")]);
      state.me = me.agent; state.offers = me.offers; state.mine = me.conversations; state.queue = queue;
      renderPresence(); renderOffers(); renderMine(); renderQueue();
      if (state.selected && !state.mine.some((c) => c.id === state.selected)) {
        state.selected = null; renderConversation();
      }
    } catch (error) { fail(error); }
  }

  let pending = null;
  function refreshSoon() {
    if (pending) return;
    pending = setTimeout(() => { pending = null; refresh(); }, 150);
  }

  function renderPresence() {
    const presence = state.me ? state.me.presence : "away";
    $("my-presence").textContent = label("presence", state.me ? state.me.state : "away");
    const box = clear($("presence-buttons"));
    for (const option of state.options.presence) {
      box.append(el("button", { id: "presence-" + option.code, class: option.code === presence ? "on" : "",
        text: label("presence", option.code), onclick: () => setPresence(option.code) }));
    }
    tick();
  }

  async function setPresence(code) {
    try { await api("POST", "/acd/presence", { presence: code }); await refresh(); } catch (e) { fail(e); }
  }

  function renderOffers() {
    const box = clear($("offers"));
    for (const offer of state.offers) {
      const left = Math.max(0, Math.round((new Date(offer.expires_at) - Date.now()) / 1000));
      box.append(el("div", { class: "offer", dataset: { id: offer.id, conversation: offer.conversation_id } },
        el("span", { class: "offer-text", text: t("ui.desk.offer_text", {
          channel: "#" + offer.conversation_id, queue: label("queue", offer.queue), seconds: left }) }),
        el("button", { class: "accept primary", text: t("ui.desk.accept"), onclick: () => answer(offer, "accept") }),
        el("button", { class: "decline", text: t("ui.desk.decline"), onclick: () => answer(offer, "decline") })));
    }
  }

  async function answer(offer, how) {
    try {
      await api("POST", `/acd/offers/${offer.id}/${how}`);
      await refresh();
      if (how === "accept") select(offer.conversation_id);
    } catch (e) { fail(e); refresh(); }
  }

  function renderMine() {
    const box = clear($("mine"));
    if (!state.mine.length) box.append(el("p", { class: "hint", text: t("ui.desk.mine_empty") }));
    for (const c of state.mine) {
      box.append(el("button", { class: "conversation" + (c.id === state.selected ? " on" : "") + (c.unread ? " unread" : ""),
        dataset: { id: c.id }, onclick: () => select(c.id) },
        `${channelName(c.channel)} · ${c.citizen_name || t("ui.desk.anonymous")} · #${c.id}`));
    }
  }

  function renderQueue() {
    const table = clear($("queue"));
    if (!state.queue.length) {
      table.append(el("tr", {}, el("td", { class: "hint", text: t("ui.desk.queue_empty") })));
      return;
    }
    for (const w of state.queue) {
      table.append(el("tr", { dataset: { queued: w.queued_at, conversation: w.conversation_id } },
        el("td", { text: String(w.position) }),
        el("td", { text: channelName(w.channel) }),
        el("td", { text: label("queue", w.queue) }),
        el("td", { text: w.citizen_name || t("ui.desk.anonymous") }),
        el("td", { class: "waited", text: duration((Date.now() - new Date(w.queued_at)) / 1000) })));
    }
  }

  function tick() {
    document.querySelectorAll("#queue tr[data-queued] .waited").forEach((cell) => {
      cell.textContent = duration((Date.now() - new Date(cell.parentNode.dataset.queued)) / 1000);
    });
    const me = state.me;
    $("wrap-up-left").textContent = me && me.wrap_up_until
      ? t("ui.desk.wrap_up_left", { seconds: Math.max(0, Math.round((new Date(me.wrap_up_until) - Date.now()) / 1000)) }) : "";
    document.querySelectorAll(".offer").forEach((node) => {
      const offer = state.offers.find((o) => String(o.id) === node.dataset.id);
      if (offer) node.querySelector(".offer-text").textContent = t("ui.desk.offer_text", {
        channel: "#" + offer.conversation_id, queue: label("queue", offer.queue),
        seconds: Math.max(0, Math.round((new Date(offer.expires_at) - Date.now()) / 1000)) });
    });
  }

  async function select(id) {
    state.selected = id;
    const c = state.mine.find((x) => x.id === id);
    if (c) c.unread = false;
    renderMine();
    try {
      state.conversation = await api("GET", `/conversations/${id}`);
      state.profile = await api("GET", `/citizens/${state.conversation.citizen_id}`);
    } catch (e) { fail(e); return; }
    $("ticket-form").hidden = true; $("answer-form").hidden = true;
    renderConversation(); renderHistory();
  }

  function messageNode(m) {
    return el("div", { class: "msg " + m.direction, dataset: { id: m.id } },
      el("span", { class: "who", text: label("ui.direction", m.direction) + " · " + when(m.created_at) }),
      el("p", { class: "body", text: m.body }));
  }

  function renderConversation() {
    const has = !!(state.selected && state.conversation);
    $("pick").hidden = has; $("conversation-body").hidden = !has;
    if (!has) return;
    const c = state.conversation;
    const name = (state.profile && state.profile.name) || t("ui.desk.anonymous");
    $("conversation-title").textContent = `${channelName(c.channel)} · ${name} · #${c.id}` +
      (c.state === "closed" ? " — " + t("ui.desk.citizen_left") : "");
    const box = clear($("messages"));
    for (const m of c.messages) box.append(messageNode(m));
    box.scrollTop = box.scrollHeight;
    const canned = clear($("canned"));
    canned.append(el("option", { value: "", text: t("ui.desk.canned") }));
    for (const r of state.options.canned_replies) canned.append(el("option", { value: r.code, text: r.label }));
    const target = clear($("transfer-target"));
    for (const q of state.options.queues) target.append(el("option", { value: "q:" + q.code, text: q.label }));
    for (const a of state.agents) if (!state.me || a.agent_id !== state.me.agent_id) {
      target.append(el("option", { value: "a:" + a.agent_id, text: a.name }));
    }
    const wrap = clear($("wrap-up"));
    for (const w of state.options.wrap_up_codes) wrap.append(el("option", { value: w.code, text: w.label }));
  }

  function historyBlock(p, note) {
    const box = el("div", { class: "history-block" });
    box.append(el("p", {}, el("strong", { text: p.name || t("ui.desk.anonymous") }), " ", p.phone || "",
      note ? el("span", { class: "hint", text: " " + note }) : null));
    box.append(el("h3", { text: t("ui.desk.history_tickets") }));
    const list = el("ul", { class: "plain" });
    for (const tk of p.tickets) {
      list.append(el("li", {}, el("a", { href: "/ui/tickets/" + encodeURIComponent(tk.number), target: "_blank", text: tk.number }),
        " " + tk.state_label + " · " + tk.title));
    }
    box.append(list);
    box.append(el("h3", { text: t("ui.desk.history_conversations") }));
    const convs = el("ul", { class: "plain" });
    for (const c of p.conversations) {
      const item = el("li", {}, el("button", { class: "link", text: `${channelName(c.channel)} · #${c.id} · ${label("ui.conv_state", c.state)} · ${when(c.created_at)}`,
        onclick: async () => {
          if (item.querySelector(".messages-mini")) { item.querySelector(".messages-mini").remove(); return; }
          try {
            const full = await api("GET", `/conversations/${c.id}`);
            item.append(el("div", { class: "messages-mini" }, full.messages.map(messageNode)));
          } catch (e) { fail(e); }
        } }));
      convs.append(item);
    }
    box.append(convs);
    if (p.calls.length) {
      box.append(el("h3", { text: t("ui.desk.history_calls") }));
      const calls = el("ul", { class: "plain" });
      for (const call of p.calls) calls.append(el("li", { text: `${when(call.started_at)} · ${call.transcript || ""}` }));
      box.append(calls);
    }
    return box;
  }

  async function renderHistory() {
    const box = clear($("history"));
    const p = state.profile;
    if (!p) return;
    box.append(historyBlock(p));
    if (!p.phone) return;
    try {
      // other records with the number this citizen gave (not verified: shown apart)
      const others = (await api("GET", "/citizens?phone=" + encodeURIComponent(p.phone))).filter((c) => c.id !== p.id);
      for (const other of others.slice(0, 5)) {
        box.append(historyBlock(await api("GET", `/citizens/${other.id}`), t("ui.desk.same_phone")));
      }
    } catch (e) { fail(e); }
  }

  function onMessage(data) {
    if (data.conversation_id === state.selected && state.conversation) {
      if (!state.conversation.messages.some((m) => m.id === data.message_id)) {
        const m = { id: data.message_id, direction: data.direction, body: data.body, created_at: data.created_at };
        state.conversation.messages.push(m);
        const box = $("messages");
        box.append(messageNode(m));
        box.scrollTop = box.scrollHeight;
      }
    } else {
      const c = state.mine.find((x) => x.id === data.conversation_id);
      if (c && data.direction === "in") { c.unread = true; renderMine(); }
    }
  }

  async function send() {
    const text = $("reply").value.trim();
    if (!text || !state.selected) return;
    try {
      await api("POST", `/conversations/${state.selected}/messages`, { body: text });
      $("reply").value = "";
    } catch (e) { fail(e); }
  }

  function citizenText() {
    return state.conversation.messages.filter((m) => m.direction === "in").map((m) => m.body).join("\n").slice(0, 4000);
  }

  async function openTicket() {
    $("answer-form").hidden = true;
    const form = $("ticket-form");
    form.hidden = false;
    $("t-description").value = citizenText();
    const cat = clear($("t-category"));
    cat.append(el("option", { value: "", text: t("ui.ticket.auto_category") }));
    for (const c of state.categories) cat.append(el("option", { value: c.code, text: c.name }));
    const type = clear($("t-type"));
    type.append(el("option", { value: "", text: t("ui.ticket.auto_category") }));
    for (const code of ["inquiry", "help", "complaint", "report", "suggestion", "praise"]) {
      type.append(el("option", { value: code, text: label("ticket_type", code) }));
    }
    state.point = null; $("t-point").textContent = "";
    if (!state.grid) state.grid = await api("GET", "/grid");
    GridMap.draw($("map"), state.grid, (lat, lon) => {
      state.point = { lat, lon };
      $("t-point").textContent = t("ui.ticket.point", { lat, lon });
      suggest();
    });
    suggest();
  }

  function draftBody() {
    const body = { description: $("t-description").value };
    if ($("t-category").value) body.category = $("t-category").value;
    if ($("t-address").value.trim()) body.address = $("t-address").value.trim();
    if (state.point) { body.lat = state.point.lat; body.lon = state.point.lon; }
    return body;
  }

  async function suggest() {
    const box = clear($("suggestion"));
    try {
      const s = await api("POST", "/routing/suggest", draftBody());
      box.append(el("strong", { text: t("ui.ticket.suggestion", {
        category: s.category ? s.category.name : "—", department: s.department ? s.department.name : t("ui.ticket.to_desk") }) }));
      box.append(el("p", { class: "hint", text: s.explanation }));
      if (s.category && !$("t-category").value) box.dataset.category = s.category.code;
    } catch (e) { box.append(el("p", { class: "hint", text: e.message })); }
  }

  async function submitTicket(event) {
    event.preventDefault();
    const body = draftBody();
    if ($("t-type").value) body.type = $("t-type").value;
    try {
      const ticket = await api("POST", `/conversations/${state.selected}/ticket`, body);
      notify(t("ui.ticket.created", { number: ticket.number }), "ok");
      $("ticket-form").hidden = true;
      $("wrap-up").value = "ticket_created";
      state.profile = await api("GET", `/citizens/${state.conversation.citizen_id}`);
      renderHistory();
    } catch (e) { fail(e); }
  }

  function openAnswer() {
    $("ticket-form").hidden = true;
    $("answer-form").hidden = false;
    $("a-description").value = citizenText();
  }

  async function submitAnswer(event) {
    event.preventDefault();
    try {
      const ticket = await api("POST", `/conversations/${state.selected}/direct_answer`, {
        description: $("a-description").value, answer: $("a-answer").value });
      notify(t("ui.ticket.created", { number: ticket.number }), "ok");
      $("answer-form").hidden = true; $("a-answer").value = "";
      $("wrap-up").value = "direct_answer";
    } catch (e) { fail(e); }
  }

  async function transfer() {
    const [kind, value] = $("transfer-target").value.split(":");
    const body = kind === "q" ? { to_queue: value } : { to_agent_id: Number(value) };
    try { await api("POST", `/conversations/${state.selected}/transfer`, body); state.selected = null; await refresh(); renderConversation(); }
    catch (e) { fail(e); }
  }

  async function end() {
    try {
      await api("POST", `/conversations/${state.selected}/end`, { wrap_up_code: $("wrap-up").value });
      state.selected = null; state.conversation = null;
      await refresh(); renderConversation(); clear($("history"));
    } catch (e) { fail(e); }
  }

  function onEvent(type, data) {
    if (type === "message.created") onMessage(data);
    else if (type === "conversation.changed") {
      if (state.conversation && data.conversation_id === state.selected) state.conversation.state = data.state;
      refreshSoon();
      if (data.conversation_id === state.selected) renderConversation();
    } else if (type === "offer.changed" || type === "agent.changed") refreshSoon();
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("send").addEventListener("click", send);
    $("reply").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(); });
    $("canned").addEventListener("change", () => {
      const r = state.options.canned_replies.find((x) => x.code === $("canned").value);
      if (r) $("reply").value = r.text;
      $("canned").value = "";
    });
    $("open-ticket").addEventListener("click", openTicket);
    $("open-answer").addEventListener("click", openAnswer);
    $("t-suggest").addEventListener("click", suggest);
    $("ticket-form").addEventListener("submit", submitTicket);
    $("answer-form").addEventListener("submit", submitAnswer);
    $("transfer").addEventListener("click", transfer);
    $("end").addEventListener("click", end);
    try { await loadStatic(); } catch (e) { fail(e); return; }
    await refresh();
    UI.live(["conversations", "agents"], onEvent, refresh);
    UI.onLanguage(async () => { await loadStatic(); await refresh(); renderConversation(); renderHistory(); });
    setInterval(tick, 1000);
  });
})();
