/* lossbench report page: sortable tables, the drill-down (the runs behind every number) and learning curves
   whose hover shows the value and the run. No dependency; the data is the JSON in #lossbench-data (drill.py).
   READY (set by the template) is the performance mark set once the page is interactive. */
"use strict";
const DATA = JSON.parse(document.getElementById("lossbench-data").textContent);
const RUN_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"];
const W = 600, H = 300, M = { l: 58, r: 14, t: 12, b: 40 };
const panel = document.getElementById("drill"), panelBody = panel.querySelector(".body");
const tip = document.getElementById("tip");

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (v) => (v === null || v === undefined ? "–" : Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3)
  ? v.toExponential(3) : String(+v.toPrecision(4)));
const colour = (variant) => DATA.colours[variant] || "#9a9a9a";

/* ---- sorting: a header click sorts its table's body by that column; missing values stay last ---- */
function sortBy(th) {
  const body = th.closest("table").tBodies[0], col = th.cellIndex;
  const descending = th.getAttribute("aria-sort") === "ascending";
  for (const other of th.parentNode.children) other.removeAttribute("aria-sort");
  th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  const key = (row) => {
    const c = row.cells[col];
    if (!c) return "";
    return c.dataset.sort ?? (c.classList.contains("num") ? "" : c.textContent.trim());
  };
  const rows = Array.from(body.rows);
  const numeric = rows.every((r) => key(r) === "" || Number.isFinite(Number(key(r))));
  const sign = descending ? -1 : 1;
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === "" || y === "") return (x === "") - (y === "");
    return sign * (numeric ? Number(x) - Number(y) : x.localeCompare(y));
  });
  body.append(...rows);
}

/* ---- charts: lines of [xs, ys]; hover shows the nearest point's value and run, a click opens the run ---- */
function ticks(lo, hi, n) {
  const span = hi - lo, raw = span / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => span / s <= n) || raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
  return out;
}

function lineChart(el, spec) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of spec.series) {
    s.xs.forEach((x, i) => {
      const y = s.ys[i], sd = s.band && s.sd[i] !== null ? s.sd[i] : 0;
      if (x === null || y === null) return;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y - sd); y1 = Math.max(y1, y + sd);
    });
  }
  if (!Number.isFinite(x0)) { el.innerHTML = `<p class="note">${esc(spec.title)}: no points to draw</p>`; return; }
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { const d = Math.abs(y0) * 0.05 || 1; y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.04; y0 -= pad; y1 += pad;
  const sx = (x) => M.l + ((x - x0) / (x1 - x0)) * (W - M.l - M.r);
  const sy = (y) => H - M.b - ((y - y0) / (y1 - y0)) * (H - M.t - M.b);
  const parts = [`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(spec.title)}">`];
  for (const t of ticks(y0, y1, 5)) {
    parts.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e3e6ea"/>`,
      `<text x="${M.l - 6}" y="${sy(t) + 4}" text-anchor="end" fill="#5f6368">${fmt(t)}</text>`);
  }
  for (const t of ticks(x0, x1, 6)) {
    parts.push(`<text x="${sx(t)}" y="${H - M.b + 16}" text-anchor="middle" fill="#5f6368">${fmt(t)}</text>`);
  }
  parts.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${H - M.b}" y2="${H - M.b}" stroke="#5f6368"/>`,
    `<line x1="${M.l}" x2="${M.l}" y1="${M.t}" y2="${H - M.b}" stroke="#5f6368"/>`,
    `<text x="${(M.l + W - M.r) / 2}" y="${H - 6}" text-anchor="middle">${esc(spec.x)}</text>`);
  const points = [];
  for (const s of spec.series) {
    const ok = s.xs.map((x, i) => x !== null && s.ys[i] !== null);
    if (s.band) {
      const idx = s.xs.map((_, i) => i).filter((i) => ok[i] && s.sd[i] !== null);
      const up = idx.map((i) => `${sx(s.xs[i])},${sy(s.ys[i] + s.sd[i])}`), down = idx.reverse().map((i) => `${sx(s.xs[i])},${sy(s.ys[i] - s.sd[i])}`);
      if (idx.length > 1) parts.push(`<polygon points="${up.concat(down).join(" ")}" fill="${s.colour}" opacity="0.15"/>`);
    }
    let d = "", pen = "M";
    s.xs.forEach((x, i) => {
      if (!ok[i]) { pen = "M"; return; }
      d += `${pen}${sx(x).toFixed(1)},${sy(s.ys[i]).toFixed(1)}`; pen = "L";
      points.push([sx(x), sy(s.ys[i]), s, i]);
    });
    parts.push(`<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="${s.width}" opacity="${s.opacity}"/>`);
    if (ok.filter(Boolean).length === 1) {  // a lone point draws no line: a dot instead
      const i = ok.indexOf(true);
      parts.push(`<circle cx="${sx(s.xs[i])}" cy="${sy(s.ys[i])}" r="${1.5 + s.width}" fill="${s.colour}" opacity="${s.opacity}"/>`);
    }
  }
  parts.push(`<circle class="hover" r="4" fill="none" stroke="#1d1d1f" stroke-width="1.5" visibility="hidden"/></svg>`);
  const legend = (spec.legend || []).map(([name, c]) => `<span><i style="background:${c}"></i>${esc(name)}</span>`).join("");
  el.innerHTML = `<figcaption>${esc(spec.title)}</figcaption>${parts.join("")}<div class="legend">${legend}</div>` +
    (spec.note ? `<figcaption>${esc(spec.note)}</figcaption>` : "");
  const svg = el.querySelector("svg"), dot = svg.querySelector("circle.hover");
  let near = null;
  svg.addEventListener("mousemove", (e) => {
    const box = svg.getBoundingClientRect();
    const mx = ((e.clientX - box.left) * W) / box.width, my = ((e.clientY - box.top) * H) / box.height;
    let best = 900;
    near = null;
    for (const p of points) {
      const dist = (p[0] - mx) ** 2 + (p[1] - my) ** 2;
      if (dist < best) { best = dist; near = p; }
    }
    if (!near) { dot.setAttribute("visibility", "hidden"); tip.hidden = true; return; }
    const [px, py, s, i] = near, run = s.run ? DATA.runs[s.run] : null;
    dot.setAttribute("cx", px); dot.setAttribute("cy", py); dot.setAttribute("visibility", "visible");
    tip.innerHTML = `${esc(s.name)}${run ? ` · run <code>${esc(s.run)}</code> · seed ${run.seed}` : ""}<br>` +
      `${esc(spec.x)} ${fmt(s.xs[i])}: ${fmt(s.ys[i])}${s.band && s.sd[i] !== null ? ` ± ${fmt(s.sd[i])}` : ""}` +
      (run ? "<br>click: this run" : "");
    tip.hidden = false;
    tip.style.left = `${Math.min(e.clientX + 14, window.innerWidth - 430)}px`; tip.style.top = `${e.clientY + 14}px`;
  });
  svg.addEventListener("mouseleave", () => { dot.setAttribute("visibility", "hidden"); tip.hidden = true; });
  svg.addEventListener("click", () => { if (near && near[2].run) runDrill(near[2].run); });
}

function groupChart(el) {
  const [gi, ci] = el.dataset.chart.split(":").map(Number);
  const g = DATA.groups[gi], chart = g.charts[ci];
  if (!Object.keys(chart.means).length) { el.innerHTML = `<p class="note">${esc(chart.title)}: not drawn: ${esc(chart.note)}</p>`; return; }
  const series = [], shown = new Set(DATA.highlighted);
  for (const [v, ids] of Object.entries(g.cells)) {
    for (const id of ids) {
      const r = DATA.runs[id], c = r.curves[chart.column];
      if (r.status === "completed" && c) series.push({ xs: c[0], ys: c[1], colour: colour(v), width: 0.7, opacity: 0.4, name: v, run: id });
    }
  }
  const means = Object.entries(chart.means).sort(([a], [b]) => shown.has(a) - shown.has(b));
  for (const [v, m] of means) {
    series.push({ xs: m[0], ys: m[1], sd: m[2], band: shown.has(v), colour: colour(v), width: shown.has(v) ? 2.2 : 1.2, opacity: 1, name: `${v} (mean over seeds)` });
  }
  const legend = DATA.highlighted.filter((v) => v in chart.means).map((v) => [v, colour(v)]);
  if (means.some(([v]) => !shown.has(v))) legend.push(["other variants (grey)", "#9a9a9a"]);
  lineChart(el, { title: chart.title, x: g.x, series, legend, note: "thick: mean over the seeds of each cell, band ± std; thin: the runs" });
}

/* ---- drill-down: the runs behind a number, and one run ---- */
function openPanel(html, charts) {
  panelBody.innerHTML = html;
  panel.hidden = false;
  panel.scrollTop = 0;
  charts.forEach((spec, i) => lineChart(panelBody.querySelector(`[data-panel-chart="${i}"]`), spec));
}

const keysText = (keys) => Object.entries(keys || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "–";

function runCharts(ids, x, first) {
  const columns = [...new Set([first, ...ids.flatMap((id) => Object.keys(DATA.runs[id].curves))])].filter(
    (c) => ids.some((id) => DATA.runs[id].curves[c]));
  const shade = (id) => RUN_COLOURS[ids.indexOf(id) % RUN_COLOURS.length];
  const legend = ids.length <= RUN_COLOURS.length ? ids.map((id) => [`seed ${DATA.runs[id].seed} (${DATA.runs[id].variant})`, shade(id)]) : [];
  return columns.map((c) => ({
    title: DATA.titles[c] || c, x, legend,
    series: ids.filter((id) => DATA.runs[id].curves[c]).map((id) => ({
      xs: DATA.runs[id].curves[c][0], ys: DATA.runs[id].curves[c][1], width: 1.4, opacity: 1, run: id,
      colour: shade(id), name: DATA.runs[id].variant })),
  }));
}

function cellKeys(ids) {
  const byVariant = new Map();
  for (const id of ids) {
    const r = DATA.runs[id];
    if (!byVariant.has(r.variant)) byVariant.set(r.variant, new Set());
    byVariant.get(r.variant).add(keysText(r.keys));
  }
  return `<dl class="measure keys">${[...byVariant].map(([v, keys]) => `<dt>${esc(v)}</dt><dd>${[...keys].map(esc).join(" | ")}</dd>`).join("")}</dl>`;
}

function runsTable(ids, metric) {
  const head = `<tr><th>run</th><th>variant</th><th class="num">seed</th><th>status</th>${metric ? '<th class="num">value</th>' : ""}<th>error</th></tr>`;
  const rows = ids.map((id) => {
    const r = DATA.runs[id];
    return `<tr><td class="drill run" data-run="${esc(id)}" tabindex="0"><code>${esc(id)}</code></td><td>${esc(r.variant)}</td>` +
      `<td class="num seed" data-sort="${r.seed}">${r.seed}</td><td class="status ${esc(r.status)}">${esc(r.status)}</td>` +
      (metric ? `<td class="num value" data-sort="${r.values[metric] ?? ""}">${fmt(r.values[metric])}</td>` : "") +
      `<td class="error">${esc(r.error)}</td></tr>`;
  });
  return `<div class="scroll"><table class="sortable runs"><thead>${head}</thead><tbody>${rows.join("")}</tbody></table></div>`;
}

function cellDrill(d) {
  const g = DATA.groups[Number(d.g)], status = d.s || "completed";
  const variants = d.b ? [d.v, d.b] : [d.v];
  const ids = variants.flatMap((v) => g.cells[v] || []).filter((id) => DATA.runs[id].tally === status)
    .sort((a, b) => DATA.runs[a].seed - DATA.runs[b].seed || DATA.runs[a].variant.localeCompare(DATA.runs[b].variant));
  const what = d.m ? g.metrics[d.m] : `${status} runs`;
  let html = `<h2>${esc(variants.join(" vs "))}: ${esc(what)}</h2><p class="caption">${esc(g.title)}: ${ids.length} ${esc(status)} run(s)` +
    (d.m && !d.b ? "; the table's mean and std are over these runs" : "") + (d.b ? "; paired by seed" : "") + ".</p>";
  html += `<p class="caption">Config keys that tell the cell from the others in its group:</p>${cellKeys(ids)}${runsTable(ids, d.m)}`;
  const charts = runCharts(ids, g.x, g.charts[0].column);
  html += charts.map((_, i) => `<figure class="chart" data-panel-chart="${i}"></figure>`).join("");
  openPanel(html, charts);
}

function runDrill(id) {
  const r = DATA.runs[id];
  if (!r) return;
  const g = r.group === null ? null : DATA.groups[r.group];
  const facts = [["variant", r.variant], ["seed", r.seed], ["status", r.status], ["group", g ? g.title : "in no table"]];
  if (r.error) facts.push(["error", r.error]);
  let html = `<h2>Run <code class="run-id">${esc(id)}</code></h2><dl class="measure">` +
    facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd class="${esc(k)}">${esc(v)}</dd>`).join("") + "</dl>";
  const keys = Object.entries(r.keys);
  html += `<h3>Config keys that differ in its group</h3>` + (keys.length ? `<table><tbody>${keys.map(([k, v]) => `<tr><td><code>${esc(k)}</code></td><td>${esc(v)}</td></tr>`).join("")}</tbody></table>` : "<p class=\"note\">none</p>");
  const values = Object.entries(r.values);
  if (values.length) html += `<h3>Values</h3><table><tbody>${values.map(([k, v]) => `<tr><td>${esc(g ? g.metrics[k] || k : k)}</td><td class="num">${fmt(v)}</td></tr>`).join("")}</tbody></table>`;
  const charts = runCharts([id], g ? g.x : "epoch", g ? g.charts[0].column : null);
  html += charts.map((_, i) => `<figure class="chart" data-panel-chart="${i}"></figure>`).join("");
  openPanel(html, charts);
  history.replaceState(null, "", `#run=${encodeURIComponent(id)}`);
}

function closePanel() {
  panel.hidden = true;
  tip.hidden = true;
  if (location.hash.startsWith("#run=")) history.replaceState(null, "", location.pathname);
}

/* ---- wiring ---- */
document.addEventListener("click", (e) => {
  const th = e.target.closest("table.sortable th");
  if (th) { sortBy(th); return; }
  if (e.target.closest("#drill .close")) { closePanel(); return; }
  const cell = e.target.closest("td[data-run], td[data-g]");
  if (cell) cell.dataset.run ? runDrill(cell.dataset.run) : cellDrill(cell.dataset);
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") closePanel();
  else if ((e.key === "Enter" || e.key === " ") && e.target.matches("td.drill")) { e.preventDefault(); e.target.click(); }
});
const charts = document.querySelectorAll(".chart[data-chart]");
if ("IntersectionObserver" in window) {
  const seen = new IntersectionObserver((entries) => entries.forEach((en) => {
    if (en.isIntersecting) { seen.unobserve(en.target); groupChart(en.target); }
  }), { rootMargin: "300px" });
  charts.forEach((el) => seen.observe(el));
} else charts.forEach(groupChart);
if (location.hash.startsWith("#run=")) runDrill(decodeURIComponent(location.hash.slice(5)));
performance.mark(READY);
document.documentElement.dataset.ready = "1";
