// The supervisors' wallboard: live numbers redrawn from websocket events (no reload), and
// the KPIs, scores and rankings of a period with a chart (Chart.js, shipped in vendor/).
"use strict";

(() => {
  const { t, label, el, clear, api, fail, duration, pct } = UI;
  const $ = (id) => document.getElementById(id);
  const KPIS = ["response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate", "return_rate", "reopen_rate"];
  let board = null;
  let report = null;
  let chart = null;

  async function refreshBoard() {
    try { board = await api("GET", "/reports/wallboard"); renderBoard(); } catch (e) { fail(e); }
  }

  let timer = null;
  function refreshSoon() {
    if (timer) return;
    timer = setTimeout(() => { timer = null; refreshBoard(); }, 300);
  }

  function renderBoard() {
    if (!board) return;
    $("w-waiting").textContent = board.waiting;
    $("w-service").textContent = pct(board.today.service_level);
    $("w-answer").textContent = pct(board.today.answer_rate);
    $("w-abandon").textContent = pct(board.today.abandonment_rate);
    $("w-opened").textContent = board.tickets_opened_today;
    $("w-closed").textContent = board.tickets_closed_today;
    const agents = clear($("w-agents"));
    for (const [stateName, count] of Object.entries(board.agents)) {
      agents.append(el("div", { class: "tile " + stateName, id: "w-agents-" + stateName },
        el("span", { text: label("presence", stateName) }), el("strong", { text: String(count) })));
    }
    const overdue = clear($("w-overdue"));
    if (!board.overdue_by_department.length) overdue.append(el("tr", {}, el("td", { class: "hint", text: t("ui.wall.overdue_none") })));
    for (const row of board.overdue_by_department) {
      overdue.append(el("tr", {}, el("td", {}, el("a", { href: "/ui/portal?department=" + row.department_id, text: row.name })),
        el("td", { class: "num", text: String(row.overdue) })));
    }
    tick();
  }

  function tick() {
    if (!board) return;
    const oldest = board.oldest_queued_at ? (Date.now() - new Date(board.oldest_queued_at)) / 1000 : 0;
    $("w-longest").textContent = duration(oldest);
  }

  function periodQuery() {
    const params = new URLSearchParams();
    if ($("p-start").value) params.set("start", $("p-start").value);
    if ($("p-end").value) params.set("end", $("p-end").value);
    return params.toString();
  }

  async function refreshKpis(event) {
    if (event) event.preventDefault();
    const q = periodQuery();
    $("csv-tickets").href = "/api/reports/tickets.csv?lang=" + UI.boot.locale + (q ? "&" + q : "");
    $("csv-kpis").href = "/api/reports/kpis.csv?lang=" + UI.boot.locale + (q ? "&" + q : "");
    try { report = await api("GET", "/reports/kpis" + (q ? "?" + q : "")); renderKpis(); } catch (e) { fail(e); }
  }

  function rankTable(table, rows) {
    clear(table);
    table.append(el("tr", {}, el("th", { text: t("ui.wall.rank") }), el("th", { text: t("ui.wall.department") }),
      el("th", { text: t("ui.wall.episodes") }), ...KPIS.map((k) => el("th", { text: t("ui.kpi." + k) })),
      el("th", { text: t("ui.wall.score") })));
    for (const r of rows) {
      table.append(el("tr", { dataset: { code: r.code } }, el("td", { text: r.rank === null ? "—" : String(r.rank) }),
        el("td", { text: r.name }), el("td", { class: "num", text: String(r.episodes) }),
        ...KPIS.map((k) => el("td", { class: "num", text: pct(r.kpis[k]) })),
        el("td", { class: "num score", text: r.score === null ? "—" : r.score.toFixed(1) })));
    }
  }

  function renderKpis() {
    if (!report) return;
    rankTable($("rank-departments"), report.departments);
    rankTable($("rank-streets"), report.streets);
    const top = report.departments.filter((r) => r.score !== null).slice(0, 12);
    const data = {
      labels: top.map((r) => r.name),
      datasets: [
        { label: t("ui.wall.score"), data: top.map((r) => r.score), backgroundColor: "#2f6fb0" },
        { label: t("ui.kpi.satisfaction_rate"), data: top.map((r) => (r.kpis.satisfaction_rate.value ?? 0) * 100), backgroundColor: "#4caf78" },
        { label: t("ui.kpi.on_time_rate"), data: top.map((r) => (r.kpis.on_time_rate.value ?? 0) * 100), backgroundColor: "#e0a526" },
      ],
    };
    if (typeof Chart === "undefined") return;
    if (chart) chart.destroy();
    chart = new Chart($("kpi-chart"), { type: "bar", data,
      options: { animation: false, responsive: true, scales: { y: { min: 0, max: 100 } } } });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("period").addEventListener("submit", refreshKpis);
    await Promise.all([refreshBoard(), refreshKpis()]);
    UI.live(["wallboard"], () => refreshSoon(), refreshBoard);
    UI.onLanguage(() => { refreshBoard(); refreshKpis(); });
    setInterval(tick, 1000);
    setInterval(refreshBoard, 30000);
  });
})();
