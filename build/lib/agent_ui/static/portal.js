// The department portal: our dispatched tickets by urgency, with lights and counters.
"use strict";

(() => {
  const { t, label, el, clear, api, fail, when } = UI;
  const $ = (id) => document.getElementById(id);
  let department = UI.boot.department_id;

  async function refresh() {
    if (!department) { await pickDepartment(); return; }
    try {
      const [summary, list] = await Promise.all([
        api("GET", `/departments/${department}/summary`),
        api("GET", `/tickets?department_id=${department}&state=dispatched,accepted&sort=urgency&per_page=100`),
      ]);
      $("count-overdue").textContent = summary.overdue;
      $("count-due-soon").textContent = summary.due_soon;
      $("count-to-sign").textContent = summary.to_sign;
      $("count-in-hand").textContent = summary.in_hand;
      render(list.items);
    } catch (e) { fail(e); }
  }

  function render(items) {
    const table = clear($("inbox"));
    table.append(el("tr", {}, ...["ticket.light", "ticket.number", "ticket.title", "ticket.state", "ticket.sign_due", "ticket.due"]
      .map((k) => el("th", { text: t("ui." + k) }))));
    if (!items.length) table.append(el("tr", {}, el("td", { colspan: 6, class: "hint", text: t("ui.portal.empty") })));
    for (const tk of items) {
      table.append(el("tr", { class: "ticket", dataset: { number: tk.number } },
        el("td", {}, el("span", { class: "light " + (tk.light || "none"), title: label("light", tk.light), text: label("light", tk.light) })),
        el("td", {}, el("a", { href: "/ui/tickets/" + encodeURIComponent(tk.number), text: tk.number })),
        el("td", { text: (tk.priority === "urgent" ? "[" + label("priority", "urgent") + "] " : "") + tk.title }),
        el("td", { text: tk.state_label }),
        el("td", { text: when(tk.sign_due_at) }),
        el("td", { text: when(tk.due_at) })));
    }
  }

  async function pickDepartment() {
    const select = $("department-pick");
    select.hidden = false;
    const departments = await api("GET", "/departments");
    clear(select).append(el("option", { value: "", text: t("ui.portal.pick_department") }));
    for (const d of departments) if (!d.is_area || d.kind === "street") select.append(el("option", { value: d.id, text: d.name }));
    select.onchange = () => { department = Number(select.value) || null; if (department) refresh(); };
  }

  document.addEventListener("DOMContentLoaded", async () => {
    await refresh();
    UI.live(department ? [`department:${department}`] : ["tickets"], (type) => { if (type === "ticket.changed") refresh(); }, refresh);
    UI.onLanguage(refresh);
    setInterval(refresh, 60000);
  });
})();
