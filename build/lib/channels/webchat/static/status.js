"use strict";
(() => {
  let locale = (localStorage.getItem("hotline-status-lang") || navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
  let strings = {};
  const $ = (id) => document.getElementById(id);
  const t = (k) => strings[k] || k;
  async function load() {
    strings = await (await fetch("/status/strings/" + locale + ".json")).json();
    document.documentElement.lang = locale;
    document.title = t("status.title");
    $("title").textContent = t("status.title");
    $("l-number").textContent = t("status.number");
    $("l-last4").textContent = t("status.last4");
    $("submit").textContent = t("status.submit");
    $("lang").textContent = t("widget.lang");
  }
  // a link from an SMS (/s/<number>) arrives as ?ticket=<number>
  const given = new URLSearchParams(location.search).get("ticket");
  if (given && /^\d{8}-\d{4,6}$/.test(given)) $("number").value = given;
  function when(iso) { return iso ? new Date(iso).toLocaleString(locale === "en" ? "en-GB" : "zh-CN", { hour12: false }) : "—"; }
  async function lookup(event) {
    event.preventDefault();
    $("error").textContent = "";
    const result = $("result");
    result.hidden = true;
    while (result.firstChild) result.removeChild(result.firstChild);
    const response = await fetch("/status/lookup?lang=" + locale, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ number: $("number").value.trim(), last4: $("last4").value.trim() }) });
    const data = await response.json();
    if (!response.ok) { $("error").textContent = data.error.message; return; }
    const rows = [["status.state", data.state_label], ["status.category", data.category], ["status.department", data.department],
      ["status.created", when(data.created_at)], ["status.due", when(data.due_at)], ["status.reply", data.reply || t("status.none")]];
    for (const [key, value] of rows) {
      const dt = document.createElement("dt"); dt.textContent = t(key);
      const dd = document.createElement("dd"); dd.textContent = value || "—"; dd.id = "r-" + key.split(".")[1];
      result.append(dt, dd);
    }
    result.hidden = false;
  }
  document.addEventListener("DOMContentLoaded", () => {
    $("lookup").addEventListener("submit", lookup);
    $("lang").addEventListener("click", () => { locale = locale === "en" ? "zh-CN" : "en"; localStorage.setItem("hotline-status-lang", locale); load(); });
    load();
  });
})();
