// One ticket: facts, the steps this user may take, and its full history from the audit trail.
"use strict";

(() => {
  const { t, label, el, clear, api, notify, fail, when } = UI;
  const $ = (id) => document.getElementById(id);
  let ticket = null;

  // the fields each step asks for
  const FIELDS = {
    sign_for: [], reply: [["text", "textarea"]], return: [["reason", "textarea"]],
    request_extension: [["days", "number"], ["reason", "textarea"]], approve_extension: [],
    deny_extension: [["reason", "textarea"]], close: [], urge: [], supervise: [],
    reopen: [["reason", "textarea"]], dispatch: [], cancel: [["reason", "textarea"]],
  };
  const FIELD_LABEL = { text: "ui.ticket.text", reason: "ui.ticket.reason", days: "ui.ticket.days" };

  async function load() {
    try { ticket = await api("GET", "/tickets/" + encodeURIComponent(UI.boot.ticket)); render(); }
    catch (e) { fail(e); }
  }

  function fact(key, value) {
    return [el("dt", { text: t(key) }), el("dd", { text: value || "—" })];
  }

  function render() {
    $("ticket-number").textContent = ticket.number + " · " + ticket.title;
    const facts = clear($("ticket-facts"));
    facts.append(...fact("ui.ticket.state", ticket.state_label), ...fact("ui.ticket.type", ticket.type_label),
      ...fact("ui.ticket.category", ticket.category && ticket.category.name),
      ...fact("ui.ticket.department", ticket.department && ticket.department.name),
      ...fact("ui.ticket.light", label("light", ticket.light)),
      ...fact("ui.ticket.sign_due", when(ticket.sign_due_at)), ...fact("ui.ticket.due", when(ticket.due_at)),
      ...fact("ui.ticket.address", ticket.location.address),
      ...fact("ui.ticket.description", ticket.description), ...fact("ui.ticket.reply", ticket.reply),
      ...fact("ui.ticket.routing", ticket.routing_explanation));
    const actions = clear($("ticket-actions"));
    for (const step of ticket.allowed_steps) {
      if (!(step in FIELDS) || step === "dispatch") continue;
      const form = el("form", { class: "step", dataset: { step } });
      for (const [name, kind] of FIELDS[step]) {
        const input = kind === "textarea" ? el("textarea", { name, rows: 2, required: true, maxlength: 4000 })
          : el("input", { name, type: "number", min: 1, max: 10, required: true });
        form.append(el("label", {}, el("span", { text: t(FIELD_LABEL[name]) }), input));
      }
      form.append(el("button", { type: "submit", class: "primary", id: "step-" + step, text: label("step", step) }));
      form.addEventListener("submit", (event) => take(event, step, form));
      actions.append(form);
    }
    const history = clear($("ticket-history"));
    for (const h of ticket.history) {
      const details = h.details ? Object.entries(h.details).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ") : "";
      const step = h.action.startsWith("ticket.") ? label("step", h.action.slice(7)) : h.action;
      history.append(el("li", {}, el("strong", { text: when(h.at) + " · " + (step === "create" ? h.action : step) }),
        " " + h.actor.name + " (" + label("role", h.actor.role) + ")", details ? el("p", { class: "hint", text: details }) : null));
    }
  }

  async function take(event, step, form) {
    event.preventDefault();
    const body = { version: ticket.version };
    for (const [name, kind] of FIELDS[step]) {
      const value = form.elements[name].value;
      body[name] = kind === "number" ? Number(value) : value;
    }
    try {
      ticket = await api("POST", `/tickets/${ticket.id}/${step}`, body);
      notify(t("ui.ticket.done", { step: label("step", step) }), "ok");
      render();
    } catch (e) { fail(e); load(); }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    await load();
    if (ticket) UI.live(["tickets"], (type, data) => { if (data.ticket_id === ticket.id && data.version !== ticket.version) load(); }, load);
    UI.onLanguage(load);
  });
})();
