// The source page's feature map: every feature a point at its 2-D position (PCA or UMAP of the decoder
// directions, /api/v1/sources/{s}/map), darker where it fires more often. Hover names the nearest feature,
// click opens it; the search box highlights indices ("12, 40-45") or features whose label contains a word. A grid of buckets keeps hover fast at 65k.
(function () {
  "use strict";
  const section = document.querySelector(".feature-map[data-map-url]");
  if (!section) return;
  const canvas = section.querySelector("canvas");
  const tip = section.querySelector(".map-tip");
  const search = section.querySelector(".map-search");
  const ctx = canvas.getContext("2d");
  const PAD = 12, GRID = 64;
  let data = null, px = [], py = [], buckets = new Map(), highlight = new Set();

  function parseIndices(text) {
    const out = new Set();
    if (!/^[\d,\s-]*$/.test(text)) {  // words: features whose label contains them
      const needle = text.trim().toLowerCase();
      for (const [i, label] of Object.entries(data ? data.labels : {})) if (label.toLowerCase().includes(needle)) out.add(+i);
      return out;
    }
    for (const part of text.split(/[,\s]+/)) {
      const m = part.match(/^(\d+)(?:-(\d+))?$/);
      if (!m) continue;
      const lo = +m[1], hi = m[2] ? Math.min(+m[2], lo + 100000) : lo;
      for (let i = lo; i <= hi; i++) out.add(i);
    }
    return out;
  }

  function layout() {
    const n = data.x.length, w = canvas.width, h = canvas.height;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      x0 = Math.min(x0, data.x[i]); x1 = Math.max(x1, data.x[i]);
      y0 = Math.min(y0, data.y[i]); y1 = Math.max(y1, data.y[i]);
    }
    const sx = (w - 2 * PAD) / ((x1 - x0) || 1), sy = (h - 2 * PAD) / ((y1 - y0) || 1);
    px = new Float32Array(n); py = new Float32Array(n); buckets = new Map();
    for (let i = 0; i < n; i++) {
      px[i] = PAD + (data.x[i] - x0) * sx;
      py[i] = h - PAD - (data.y[i] - y0) * sy;
      const key = Math.floor(px[i] / w * GRID) * GRID + Math.floor(py[i] / h * GRID);
      if (!buckets.has(key)) buckets.set(key, []);
      buckets.get(key).push(i);
    }
  }

  function colour(density) {
    if (!(density > 0)) return "rgba(160, 160, 160, 0.5)";  // dead
    const t = Math.min(1, Math.max(0, (Math.log10(density) + 6) / 6));  // 1e-6 .. 1
    const light = Math.round(75 - 50 * t);
    return "hsla(215, 70%, " + light + "%, 0.8)";
  }

  function draw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const n = px.length, r = n > 20000 ? 1 : n > 3000 ? 1.5 : 2.5;
    for (let i = 0; i < n; i++) {
      ctx.fillStyle = colour(data.density[i]);
      ctx.fillRect(px[i] - r, py[i] - r, 2 * r, 2 * r);
    }
    ctx.fillStyle = "rgba(220, 60, 20, 0.95)";
    for (const i of highlight) if (i < n) ctx.fillRect(px[i] - 3, py[i] - 3, 6, 6);
  }

  function nearest(ev) {
    const rect = canvas.getBoundingClientRect();
    const x = (ev.clientX - rect.left) * canvas.width / rect.width;
    const y = (ev.clientY - rect.top) * canvas.height / rect.height;
    const gx = Math.floor(x / canvas.width * GRID), gy = Math.floor(y / canvas.height * GRID);
    let best = -1, bestD = 100;  // within 10 px
    for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
      for (const i of buckets.get((gx + dx) * GRID + gy + dy) || []) {
        const d = (px[i] - x) ** 2 + (py[i] - y) ** 2;
        if (d < bestD) { bestD = d; best = i; }
      }
    }
    return best;
  }

  canvas.addEventListener("mousemove", function (ev) {
    const i = nearest(ev);
    canvas.dataset.hover = i;
    const label = data.labels[i] ? " · " + data.labels[i] : "";
    tip.textContent = i < 0 ? "" : "Feature " + i + " · density " + (data.density[i] > 0 ? (100 * data.density[i]).toPrecision(3) + " %" : "dead") + label;
  });
  canvas.addEventListener("click", function (ev) {
    const i = nearest(ev);
    if (i >= 0) window.location.href = data.feature_url + i;
  });
  if (search) search.addEventListener("input", function () {
    highlight = parseIndices(search.value);
    section.dataset.highlighted = String(highlight.size);
    if (data) draw();
  });

  fetch(section.dataset.mapUrl, {headers: {Accept: "application/json"}})
    .then(function (r) { return r.json(); })
    .then(function (json) {
      data = json;
      if (!data.method) { tip.textContent = "No map stored for this source (precomputed before maps existed)."; return; }
      const method = section.querySelector(".map-method");
      if (method) method.textContent = data.method.toUpperCase();
      layout(); draw();
      canvas.dataset.points = String(px.length);
    });
})();
