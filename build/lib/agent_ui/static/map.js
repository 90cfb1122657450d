// The grid (GeoJSON polygons) drawn as SVG, with no map tiles: click to pick a point.
"use strict";

const GridMap = (() => {
  const NS = "http://www.w3.org/2000/svg";
  function draw(container, geojson, onPick) {
    UI.clear(container);
    const rings = [];
    for (const feature of geojson.features) {
      const g = feature.geometry;
      const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
      for (const poly of polys) rings.push({ ring: poly[0], feature });
    }
    if (!rings.length) return null;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const { ring } of rings) for (const [x, y] of ring) {
      minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
    }
    const W = 600, H = Math.max(200, Math.round((600 * (maxY - minY)) / (maxX - minX || 1)));
    const sx = (x) => ((x - minX) / (maxX - minX || 1)) * W;
    const sy = (y) => H - ((y - minY) / (maxY - minY || 1)) * H;
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", `-2 -2 ${W + 4} ${H + 4}`);
    svg.setAttribute("class", "gridmap");
    for (const { ring, feature } of rings) {
      const poly = document.createElementNS(NS, "polygon");
      poly.setAttribute("points", ring.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" "));
      poly.dataset.code = feature.properties.code;
      const title = document.createElementNS(NS, "title");
      title.textContent = `${feature.properties.name} (${feature.properties.owner || ""})`;
      poly.append(title);
      svg.append(poly);
    }
    const marker = document.createElementNS(NS, "circle");
    marker.setAttribute("r", "6");
    marker.setAttribute("class", "marker");
    marker.style.display = "none";
    svg.append(marker);
    svg.addEventListener("click", (event) => {
      const point = svg.createSVGPoint();
      point.x = event.clientX; point.y = event.clientY;
      const local = point.matrixTransform(svg.getScreenCTM().inverse());
      const lon = minX + (local.x / W) * (maxX - minX);
      const lat = minY + ((H - local.y) / H) * (maxY - minY);
      marker.setAttribute("cx", local.x); marker.setAttribute("cy", local.y);
      marker.style.display = "";
      svg.querySelectorAll("polygon").forEach((p) => p.classList.remove("picked"));
      if (event.target.tagName === "polygon") event.target.classList.add("picked");
      onPick(Number(lat.toFixed(6)), Number(lon.toFixed(6)));
    });
    container.append(svg);
    return svg;
  }
  return { draw };
})();
