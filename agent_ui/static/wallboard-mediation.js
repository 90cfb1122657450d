// The wallboard's mediation tiles (矛盾纠纷调解): sessions today and now, this month's
// agreement and no-show rates and days from request to session, from /api/reports/wallboard.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const pct = (v) => (v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%");
  async function refresh() {
    if (!$("w-mediations")) return;
    const r = await fetch("/api/reports/wallboard", { credentials: "same-origin" });
    if (!r.ok) return;
    const m = (await r.json()).mediations;
    $("m-today").textContent = String(m.today);
    $("m-in-session").textContent = String(m.in_session);
    $("m-held").textContent = String(m.month.held);
    $("m-agreement").textContent = pct(m.month.agreement_rate);
    $("m-no-show").textContent = pct(m.month.no_show_rate);
    $("m-days").textContent = m.month.days_to_session === null ? "—" : m.month.days_to_session.toFixed(1);
  }
  document.addEventListener("DOMContentLoaded", () => { refresh(); setInterval(refresh, 30000); });
})();
