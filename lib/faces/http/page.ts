/**
 * The /debug/memory HTML page: one self-contained page (inline style and script, no fonts, no
 * CDN) that polls `?format=json&history=1` on the same path and draws the RSS breakdown over time
 * as stacked areas on a time axis: the values of the moment under the pointer, two moments picked
 * by clicking compared (`?format=json&diff=A,B`, computed in history.ts), the findings' history (when
 * each appeared and cleared), the current findings and the allocator chain. The handler serves it
 * with a Content-Security-Policy that allows requests to its own origin only.
 */

/** The Content-Security-Policy the page is served with. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

export function pageHtml(pollMs: number): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heapstate</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .3em}h2{font-size:1.05em;margin:1.2em 0 .4em}
#summary{color:#555;margin-bottom:.6em}canvas{background:#fff;border:1px solid #ddd;max-width:100%}
#legend span{display:inline-block;margin:.2em .8em .2em 0}#legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
#plot{position:relative;display:inline-block;max-width:100%}#chart{cursor:crosshair}
#tip{position:absolute;background:#fff;border:1px solid #999;padding:.4em .6em;font-size:12px;min-width:200px;pointer-events:none;box-shadow:0 1px 4px #0002}
#tip div{display:flex;justify-content:space-between;gap:1em}#hint{color:#777;font-size:12px}
#fhist td{padding:0 .8em 0 0}#fhist td.track{position:relative;width:40%;min-width:200px;height:1em;background:#f0f0f0}
#fhist .bar{position:absolute;top:0;bottom:0;background:#4e79a7}#fhist tr.warn .bar{background:#e15759}
#diff td,#diff th{padding:0 .8em 0 0;text-align:left}#diff td.n{text-align:right}
.warn{color:#a40}#parts td{padding:0 .8em 0 0}#parts td.n{text-align:right}#parts tr.child td:first-child{padding-left:1.5em;color:#555}pre{background:#fff;border:1px solid #ddd;padding:.6em;overflow:auto}#error{color:#b00}
</style></head>
<body>
<h1>heapstate <span id="pid"></span></h1>
<div id="summary">loading…</div>
<div id="plot"><canvas id="chart" width="960" height="340" data-samples="0"></canvas><div id="tip" hidden></div></div>
<div id="legend"></div>
<div id="hint">Point at the chart for the values of a moment; click two moments to compare them.</div>
<div id="error"></div>
<div id="compare" hidden><h2 id="compare-title"></h2><button id="clear-pick" type="button">clear</button>
<ul id="compare-notes"></ul><table id="diff"></table></div>
<h2>Findings</h2><ul id="findings"></ul>
<h2>Findings over time</h2><table id="fhist"></table>
<h2>Where the RSS is</h2><table id="parts"></table>
<h2>Allocator chain</h2><pre id="chain"></pre>
<h2>Native allocation sites</h2><button id="sites-read" type="button">read them</button>
<span id="sites-note">a deep reading: the allocator dumps its sampled profile (jemalloc or tcmalloc with sampling on)</span>
<table id="sites"></table>
<script>
"use strict";
const PARTS = [
  ["v8-heap", "#4e79a7", "V8 heap"], ["native-in-use", "#f28e2b", "native in use"],
  ["native-committed", "#ffbe7d", "native committed"], ["native-free", "#e15759", "native free (resident)"],
  ["native-free-releasable", "#e15759", "native free, releasable by trim"],
  ["native-free-fragmented", "#ff9d9a", "native free, fragmented"],
  ["native-metadata", "#b07aa1", "allocator metadata"], ["other", "#d4a6c8", "other allocators"],
  ["reported", "#86bcb6", "reporters' own mappings"],
  ["lazy-free", "#76b7b2", "lazy-free (MADV_FREE)"], ["anon-mappings", "#a0cbe8", "other anonymous mappings"],
  ["stacks", "#59a14f", "stacks"], ["code", "#9c755f", "code"], ["file", "#bab0ac", "files"],
  ["shmem", "#edc948", "shmem"], ["unattributed", "#d3d3d3", "unattributed"]];
const units = ["B", "KiB", "MiB", "GiB", "TiB"];
function fmt(n) { if (n === undefined || n === null) return "(unknown)"; let v = Math.abs(n), i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; } return (n < 0 ? "-" : "") + (i ? v.toFixed(1) : v) + " " + units[i]; }
function signed(n) { return n === undefined ? "" : (n > 0 ? "+" : n < 0 ? "−" : "±") + fmt(Math.abs(n)); }
function clock(t, tenths) { const d = new Date(t); const hms = [d.getHours(), d.getMinutes(), d.getSeconds()].map(v => String(v).padStart(2, "0")).join(":");
  return tenths ? hms + "." + Math.floor(d.getMilliseconds() / 100) : hms; }
function el(tag, text, cls) { const e = document.createElement(tag); e.textContent = text; if (cls) e.className = cls; return e; }
function valueOf(sample, name) {
  if (name === "unattributed") return Math.max(0, sample.unattributedBytes || 0);
  if (name === "other" || name === "reported") { let t = 0;
    for (const k in sample.parts) if (k.startsWith(name === "other" ? "other-" : "reported ")) t += sample.parts[k]; return t; }
  return sample.parts[name] || 0; }
let hist = [], hover = -1, picked = [];
const box = { left: 56, right: 8, top: 10, bottom: 28 };
function frame() {
  const c = document.getElementById("chart"), W = c.width, H = c.height;
  const t0 = hist.length ? Date.parse(hist[0].time) : 0, t1 = hist.length ? Date.parse(hist[hist.length - 1].time) : 1;
  const span = Math.max(1, t1 - t0);
  const x = t => box.left + ((t - t0) * (W - box.left - box.right)) / span;
  return { c, W, H, t0, t1, span, x };
}
function nearest(t) { let best = -1, d = Infinity;
  hist.forEach((s, i) => { const e = Math.abs(Date.parse(s.time) - t); if (e < d) { d = e; best = i; } }); return best; }
function draw() {
  const { c, W, H, t0, t1, span, x } = frame(), g = c.getContext("2d");
  c.dataset.samples = String(hist.length);
  g.clearRect(0, 0, W, H);
  const totals = hist.map(s => PARTS.reduce((t, p) => t + valueOf(s, p[0]), 0));
  let max = 1; hist.forEach((s, i) => { max = Math.max(max, totals[i], s.rssBytes || 0); });
  const y = v => H - box.bottom - (v * (H - box.bottom - box.top)) / max;
  const xs = hist.map(s => x(Date.parse(s.time)));
  g.fillStyle = "#666"; g.font = "11px sans-serif";
  for (let k = 0; k <= 4; k++) { const v = (max * k) / 4; g.fillText(fmt(v), 2, y(v) + 4);
    g.strokeStyle = "#eee"; g.beginPath(); g.moveTo(box.left, y(v)); g.lineTo(W - box.right, y(v)); g.stroke(); }
  // The time axis: ticks a round number of seconds apart, at most about eight.
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
  const step = (steps.find(s => (span / 1000) / s <= 8) || 86400) * 1000;
  g.strokeStyle = "#999"; g.beginPath(); g.moveTo(box.left, H - box.bottom); g.lineTo(W - box.right, H - box.bottom); g.stroke();
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const px = x(t); g.beginPath(); g.moveTo(px, H - box.bottom); g.lineTo(px, H - box.bottom + 4); g.stroke();
    if (px - 22 >= 0 && px + 24 <= W) g.fillText(clock(t), px - 22, H - 8);
  }
  const base = hist.map(() => 0);
  for (const [name, color] of PARTS) {
    const top = hist.map((s, i) => base[i] + valueOf(s, name));
    if (top.every((v, i) => v === base[i])) continue;
    g.fillStyle = color; g.beginPath();
    hist.forEach((_, i) => (i ? g.lineTo(xs[i], y(top[i])) : g.moveTo(xs[i], y(top[i]))));
    for (let i = hist.length - 1; i >= 0; i--) g.lineTo(xs[i], y(base[i]));
    g.closePath(); g.fill();
    top.forEach((v, i) => { base[i] = v; });
  }
  g.strokeStyle = "#000"; g.beginPath();
  hist.forEach((s, i) => (i ? g.lineTo(xs[i], y(s.rssBytes || 0)) : g.moveTo(xs[i], y(s.rssBytes || 0)))); g.stroke();
  // The two picked moments, then the one under the pointer.
  picked.forEach((t, k) => { const i = hist.findIndex(s => s.time === t); if (i < 0) return;
    g.strokeStyle = "#c00"; g.setLineDash([4, 3]); g.beginPath(); g.moveTo(xs[i], box.top); g.lineTo(xs[i], H - box.bottom); g.stroke();
    g.setLineDash([]); g.fillStyle = "#c00"; g.fillText(k ? "B" : "A", xs[i] + 3, box.top + 10); });
  if (hover >= 0 && hover < hist.length) { g.strokeStyle = "#333"; g.beginPath(); g.moveTo(xs[hover], box.top); g.lineTo(xs[hover], H - box.bottom); g.stroke(); }
  const legend = document.getElementById("legend"); legend.replaceChildren();
  const last = hist[hist.length - 1] || { parts: {} };
  for (const [name, color, label] of PARTS) {
    const has = name === "unattributed" || (name === "other" || name === "reported" ? valueOf(last, name) > 0 : last.parts[name] !== undefined);
    if (!has) continue;
    const v = name === "unattributed" ? last.unattributedBytes : valueOf(last, name);
    const span = el("span", label + " " + fmt(v)); const sw = el("i", ""); sw.style.background = color; span.prepend(sw); legend.append(span);
  }
  legend.append(el("span", "— RSS " + fmt(last.rssBytes)));
}
function pointerTime(ev) {
  const { c, W, t0, span } = frame(), r = c.getBoundingClientRect();
  const px = ((ev.clientX - r.left) * W) / r.width;
  return t0 + ((px - box.left) * span) / (W - box.left - box.right);
}
function showTip(ev) {
  const tip = document.getElementById("tip");
  if (hover < 0) { tip.hidden = true; return; }
  const s = hist[hover]; tip.replaceChildren();
  tip.dataset.time = s.time;
  tip.append(el("b", clock(Date.parse(s.time), true) + "  (" + s.tier + ")"));
  const line = (k, v) => { const d = el("div", k + " "); d.append(el("span", v, "n")); tip.append(d); };
  line("RSS", fmt(s.rssBytes));
  for (const [name, , label] of PARTS) {
    if (name === "unattributed") { if (s.unattributedBytes !== undefined) line(label, fmt(s.unattributedBytes)); continue; }
    if (name === "other" || name === "reported" ? valueOf(s, name) > 0 : s.parts[name] !== undefined) line(label, fmt(valueOf(s, name)));
  }
  if (s.allocatedBytes !== undefined) line("native heap (allocated)", fmt(s.allocatedBytes));
  if (s.committedBytes !== undefined) line("native heap (committed)", fmt(s.committedBytes));
  if (s.nativeUnclassifiedBytes !== undefined) line("native-unclassified", fmt(s.nativeUnclassifiedBytes));
  if (s.peakRssBytes !== undefined) line("peak RSS", fmt(s.peakRssBytes));
  const f = (s.findings || []).map(x => x.id);
  tip.append(el("div", "findings: " + (f.length ? f.join(", ") : "none")));
  const r = document.getElementById("plot").getBoundingClientRect();
  tip.style.left = Math.min(ev.clientX - r.left + 12, r.width - 240) + "px"; tip.style.top = "8px"; tip.hidden = false;
}
const chart = document.getElementById("chart");
chart.addEventListener("mousemove", ev => { hover = nearest(pointerTime(ev)); draw(); showTip(ev); });
chart.addEventListener("mouseleave", () => { hover = -1; draw(); document.getElementById("tip").hidden = true; });
chart.addEventListener("click", ev => { const i = nearest(pointerTime(ev)); if (i < 0) return;
  picked = picked.length >= 2 ? [hist[i].time] : [...picked, hist[i].time]; draw(); compare(); });
document.getElementById("clear-pick").addEventListener("click", () => { picked = []; draw(); compare(); });
async function compare() {
  const panel = document.getElementById("compare"), title = document.getElementById("compare-title"), table = document.getElementById("diff"), notes = document.getElementById("compare-notes");
  table.replaceChildren(); notes.replaceChildren(); panel.hidden = picked.length === 0;
  delete panel.dataset.from; delete panel.dataset.to;
  if (picked.length < 2) { title.textContent = picked.length ? "A at " + clock(Date.parse(picked[0])) + ": click a second moment" : ""; return; }
  const [a, b] = [...picked].sort();
  try {
    const r = await fetch(location.pathname + "?format=json&diff=" + encodeURIComponent(a + "," + b), { headers: { accept: "application/json" } });
    if (!r.ok) throw new Error(r.status + " " + (await r.text()));
    const d = await r.json();
    panel.dataset.from = d.from.time; panel.dataset.to = d.to.time;
    title.textContent = clock(Date.parse(d.from.time), true) + " → " + clock(Date.parse(d.to.time), true) + "  (" + (d.elapsedMs / 1000).toFixed(1) + " s)";
    const head = el("tr", ""); for (const h of ["", "A", "B", "change"]) head.append(el("th", h)); table.append(head);
    for (const ch of d.changes) { const tr = el("tr", ""); tr.dataset.path = ch.path;
      tr.append(el("td", ch.path), el("td", fmt(ch.before), "n"), el("td", fmt(ch.after), "n"), el("td", signed(ch.delta), "n")); table.append(tr); }
    for (const n of d.notes) notes.append(el("li", n));
    if (d.findingsRaised.length) notes.append(el("li", "raised between them: " + d.findingsRaised.join(", "), "warn"));
    if (d.findingsCleared.length) notes.append(el("li", "cleared between them: " + d.findingsCleared.join(", ")));
  } catch (e) { title.textContent = "compare failed: " + e.message; }
}
function renderFindingHistory(episodes) {
  const table = document.getElementById("fhist"); table.replaceChildren();
  if (!episodes.length) { table.append(el("tr", "")); table.lastChild.append(el("td", "none raised in the history")); return; }
  const { t0, span } = frame(), tEnd = t0 + span;
  for (const e of episodes) {
    const tr = el("tr", "", e.severity === "warn" ? "warn" : ""); tr.dataset.id = e.id; tr.dataset.since = e.since; if (e.until) tr.dataset.until = e.until;
    const track = el("td", "", "track"), bar = el("span", "", "bar");
    const from = Math.max(t0, Date.parse(e.since)), to = e.until ? Date.parse(e.until) : tEnd;
    bar.style.left = (100 * (from - t0)) / span + "%"; bar.style.width = Math.max(0.5, (100 * (to - from)) / span) + "%"; track.append(bar);
    tr.append(el("td", e.id), el("td", e.severity),
      el("td", (e.fromStart ? "before " : "from ") + clock(Date.parse(e.since), true)), el("td", e.until ? "cleared " + clock(Date.parse(e.until), true) : "still raised"), track);
    table.append(tr);
  }
}
function render(d) {
  const s = d.snapshot;
  document.getElementById("pid").textContent = "pid " + s.pid;
  const a = (s.allocators || []).find((x) => x.servesMalloc);
  const heap = a ? a.allocator + (a.version ? " " + a.version : "") : "allocator unknown";
  document.getElementById("summary").textContent = s.time + " · " + heap + " · RSS " + fmt(s.process ? s.process.rssBytes : undefined) + " · " + d.history.length + " samples";
  const ul = document.getElementById("findings"); ul.replaceChildren();
  for (const f of s.findings || []) ul.append(el("li", f.message, f.severity === "warn" ? "warn" : ""));
  if (!(s.findings || []).length) ul.append(el("li", "none"));
  renderFindingHistory(d.findingsHistory || []);
  const table = document.getElementById("parts"); table.replaceChildren();
  const row = (name, bytes, source, cls) => { const tr = el("tr", "", cls);
    tr.append(el("td", name), el("td", fmt(bytes), "n"), el("td", source)); table.append(tr); };
  if (s.breakdown) {
    for (const p of s.breakdown.parts) {
      row(p.name + (p.label ? " " + p.label : ""), p.bytes, p.source);
      for (const k of p.children || []) row(k.name + (k.label ? " " + k.label : ""), k.bytes, k.source, "child");
    }
    row("unattributed", s.breakdown.unattributedBytes, "what nobody accounts for");
  }
  const c = s.breakdown && s.breakdown.chain;
  document.getElementById("chain").textContent = c && a
    ? ["allocated " + fmt(a.allocatedBytes), a.activeBytes !== undefined ? "active " + fmt(a.activeBytes) : null,
       a.residentBytes !== undefined ? "resident " + fmt(a.residentBytes) : null, "rss " + fmt(s.process && s.process.rssBytes)].filter(Boolean).join(" → ") +
      (c.fragmentationRatio !== undefined ? "   (rss/allocated " + c.fragmentationRatio + ")" : "")
    : "(no allocator figures)";
}
async function readSites() {
  const table = document.getElementById("sites"), note = document.getElementById("sites-note");
  table.replaceChildren(); note.textContent = "reading…";
  try {
    const r = await fetch(location.pathname + "?format=json&sites=10", { headers: { accept: "application/json" } });
    if (!r.ok) throw new Error(r.status + " " + (await r.text()));
    const s = await r.json(), n = s.nativeSites;
    if (!n) { const w = (s.warnings || []).find((x) => x.code === "NATIVE_SITES_UNAVAILABLE");
      note.textContent = w ? w.message : "no sites in the reading"; return; }
    note.textContent = n.source + ", a sample per " + fmt(n.sampleIntervalBytes) + " on average: " + fmt(n.estimatedBytes) + " live in " + n.samples + " samples, at " + s.time;
    const head = el("tr", ""); for (const h of ["bytes", "±", "samples", "owner", "first frames"]) head.append(el("th", h)); table.append(head);
    for (const site of n.sites) { const tr = el("tr", ""); const f = site.frames[0] || {};
      tr.dataset.symbol = f.symbol || f.address || "?";
      tr.append(el("td", fmt(site.bytes), "n"), el("td", fmt(site.plusMinusBytes), "n"), el("td", String(site.samples), "n"),
        el("td", site.owner + (site.library ? " " + site.library : "")),
        el("td", site.frames.slice(0, 3).map((x) => (x.symbol || x.address || "?") + (x.library ? " (" + x.library + ")" : "")).join(" ← ")));
      table.append(tr); }
  } catch (e) { note.textContent = "reading the sites failed: " + e.message; }
}
document.getElementById("sites-read").addEventListener("click", readSites);
async function tick() {
  try {
    const r = await fetch(location.pathname + "?format=json&history=1", { headers: { accept: "application/json" } });
    if (!r.ok) throw new Error(r.status + " " + (await r.text()));
    const d = await r.json();
    hist = d.history; if (hover >= hist.length) hover = -1;
    draw(); render(d); document.getElementById("error").textContent = "";
  } catch (e) { document.getElementById("error").textContent = "update failed: " + e.message; }
}
tick(); setInterval(tick, ${Math.max(250, Math.round(pollMs))});
</script>
</body></html>
`;
}
