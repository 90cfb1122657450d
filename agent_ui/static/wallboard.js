// The wallboard's charts: every <script type="application/json" class="chart-data"> the
// server rendered is drawn with Chart.js (vendored at setup) on the canvas it names, after
// the page loads and after every htmx swap. The numbers themselves are server-rendered.
"use strict";

(() => {
  const COLOURS = ["#2f6fb0", "#4caf78", "#e0a526", "#d64545", "#7a5cc2", "#3aa0a8"];
  const charts = new Map();

  function draw(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("script.chart-data").forEach((block) => {
      const canvas = document.getElementById(block.dataset.for);
      if (!canvas) return;
      const spec = JSON.parse(block.textContent);
      const old = charts.get(canvas.id);
      if (old) old.destroy();
      const type = spec.type || "bar";
      const datasets = spec.series.map((s, i) => ({
        label: s.label, data: s.data, backgroundColor: COLOURS[i % COLOURS.length],
        borderColor: COLOURS[i % COLOURS.length], fill: false, tension: 0.2, spanGaps: true,
      }));
      charts.set(canvas.id, new Chart(canvas, {
        type, data: { labels: spec.labels, datasets },
        options: { animation: false, responsive: true, maintainAspectRatio: true,
          scales: spec.max ? { y: { min: 0, max: spec.max } } : { y: { min: 0 } } },
      }));
    });
  }

  document.addEventListener("DOMContentLoaded", () => draw(document));
  document.addEventListener("htmx:afterSwap", (event) => draw(event.detail.target));
})();
