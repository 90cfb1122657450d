// Maps on Leaflet (vendored at setup): the city's grid cells from its own GeoJSON, with
// labels, and optionally a basemap from the tile server the hotline is configured with
// (an intranet map server; never a public CDN). With no tile server the GeoJSON is drawn
// alone on a plain background.
//
// A <div class="map" data-grid="/api/grid"> becomes a map when it appears (page load or
// htmx swap). Options as data attributes:
//   data-pick="true"      a click (or Enter, for the point under the cross-hair at the
//                         centre) sets the form's lat/lon fields and fires "point-picked";
//   data-points="URL"     GeoJSON points (tickets) drawn as circles with their labels;
//   data-tiles="URL"      a {z}/{x}/{y} tile template; data-attribution its credit line;
//   data-labels="..."     "streets" (only streets named), "hover" (names on hover),
//                         "short" (each cell by its owner, for small maps); all by default.
// The keyboard moves the map (arrows), zooms (+/-) and Enter picks; Leaflet does the rest.
"use strict";

const HotlineMap = (() => {
  const maps = new WeakMap();

  function cellStyle(feature) {
    if (feature && feature.properties && feature.properties.layer === "street") {
      return { color: "#1d3557", weight: 3, fill: false, className: "street" };
    }
    return { color: "#5d86ad", weight: 1, fillColor: "#cfe0ef", fillOpacity: 0.55, className: "grid-cell" };
  }

  async function fetchJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  function setPoint(container, map, marker, latlng) {
    const form = container.closest("form");
    const lat = Number(latlng.lat.toFixed(6));
    const lon = Number(latlng.lng.toFixed(6));
    if (form) {
      if (form.elements.lat) form.elements.lat.value = lat;
      if (form.elements.lon) form.elements.lon.value = lon;
    }
    marker.setLatLng(latlng).addTo(map);
    const out = form && form.querySelector("#t-point");
    if (out && container.dataset.pointFormat) {
      out.textContent = container.dataset.pointFormat.replace("{lat}", lat).replace("{lon}", lon);
    }
    document.body.dispatchEvent(new CustomEvent("point-picked", { detail: { lat, lon } }));
  }

  async function build(container) {
    if (maps.has(container) || typeof L === "undefined") return;
    const map = L.map(container, { keyboard: true, attributionControl: true, zoomSnap: 0.25 });
    maps.set(container, map);
    if (container.dataset.tiles) {
      L.tileLayer(container.dataset.tiles, {
        maxZoom: Number(container.dataset.maxZoom || 18),
        attribution: container.dataset.attribution || "",
      }).addTo(map);
    } else {
      container.classList.add("no-tiles");
    }
    const grid = await fetchJson(container.dataset.grid);
    const layer = L.geoJSON(grid, {
      style: cellStyle,
      onEachFeature: (feature, cell) => {
        const p = feature.properties || {};
        const street = p.layer === "street";
        const labels = container.dataset.labels;
        // "short": a small map names each cell by whom it belongs to (a community), so
        // that the labels fit their cells
        const text = labels === "short" ? p.owner || p.name : p.owner ? `${p.name} · ${p.owner}` : p.name;
        const permanent = labels === "streets" ? street : labels !== "hover";
        cell.bindTooltip(text, { permanent, direction: "center", className: street ? "street-label" : "cell-label" });
        if (cell.getElement) cell.on("add", () => cell.getElement() && cell.getElement().setAttribute("data-code", p.code));
      },
    }).addTo(map);
    const bounds = layer.getBounds();
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [8, 8] });
    else map.setView([0, 0], 2);
    if (container.dataset.points) {
      const points = await fetchJson(container.dataset.points);
      L.geoJSON(points, {
        pointToLayer: (feature, latlng) => L.circleMarker(latlng, {
          radius: 6, weight: 2, color: "#fff", fillOpacity: 0.9,
          fillColor: { red: "#d64545", yellow: "#e0a526", green: "#3f9d5f" }[feature.properties.light] || "#2f6fb0",
          className: "ticket-point",
        }),
        onEachFeature: (feature, point) => {
          const p = feature.properties || {};
          point.bindTooltip(`${p.number} · ${p.title}`);
          if (p.href) point.on("click", () => { window.location.href = p.href; });
        },
      }).addTo(map);
    }
    if (container.dataset.pick === "true") {
      const marker = L.circleMarker([0, 0], { radius: 7, color: "#fff", weight: 2, fillColor: "#d64545", fillOpacity: 1, className: "picked-point" });
      map.on("click", (event) => setPoint(container, map, marker, event.latlng));
      container.addEventListener("keydown", (event) => {
        if (event.key === "Enter") { event.preventDefault(); setPoint(container, map, marker, map.getCenter()); }
      });
      container.classList.add("pickable");
    }
    container.setAttribute("role", "application");
    container.tabIndex = 0;
  }

  function scan(root) {
    root.querySelectorAll("div.map[data-grid]").forEach((container) => {
      build(container).catch((error) => { container.textContent = error.message; });
    });
  }

  document.addEventListener("DOMContentLoaded", () => scan(document));
  document.addEventListener("htmx:afterSettle", () => scan(document));
  return { scan };
})();
