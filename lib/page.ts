/**
 * The /debug/memory HTML page: one self-contained page (inline style and script, no fonts, no
 * CDN) that polls `?format=json&history=1` on the same path and draws the RSS breakdown over time
 * as stacked areas, with the current findings and the allocator chain. The handler serves it with
 * a Content-Security-Policy that allows requests to its own origin only.
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
.warn{color:#a40}#parts td{padding:0 .8em 0 0}#parts td.n{text-align:right}#parts tr.child td:first-child{padding-left:1.5em;color:#555}pre{background:#fff;border:1px solid #ddd;padding:.6em;overflow:auto}#error{color:#b00}
</style></head>
<body>
<h1>heapstate <span id="pid"></span></h1>
<div id="summary">loading…</div>
<canvas id="chart" width="960" height="320" data-samples="0"></canvas>
<div id="legend"></div>
<div id="error"></div>
<h2>Findings</h2><ul id="findings"></ul>
<h2>Where the RSS is</h2><table id="parts"></table>
<h2>Allocator chain</h2><pre id="chain"></pre>
<script>
"use strict";
const PARTS = [
  ["v8-heap", "#4e79a7", "V8 heap"], ["native-in-use", "#f28e2b", "native in use"],
  ["native-committed", "#ffbe7d", "native committed"], ["native-free", "#e15759", "native free (resident)"],
  ["native-free-releasable", "#e15759", "native free, releasable by trim"],
  ["native-free-fragmented", "#ff9d9a", "native free, fragmented"],
  ["native-metadata", "#b07aa1", "allocator metadata"], ["other", "#d4a6c8", "other allocators"],
  ["reported", "#86bcb6", "reporters' own mappings"],
  ["lazy-free", "#76b7b2", "lazy-free (MADV_FREE)"],
  ["stacks", "#59a14f", "stacks"], ["code", "#9c755f", "code"], ["file", "#bab0ac", "files"],
  ["shmem", "#edc948", "shmem"], ["unattributed", "#d3d3d3", "unattributed"]];
const units = ["B", "KiB", "MiB", "GiB", "TiB"];
function fmt(n) { if (n === undefined || n === null) return "(unknown)"; let v = Math.abs(n), i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; } return (n < 0 ? "-" : "") + (i ? v.toFixed(1) : v) + " " + units[i]; }
function el(tag, text, cls) { const e = document.createElement(tag); e.textContent = text; if (cls) e.className = cls; return e; }
function valueOf(sample, name) {
  if (name === "unattributed") return Math.max(0, sample.unattributedBytes || 0);
  if (name === "other" || name === "reported") { let t = 0;
    for (const k in sample.parts) if (k.startsWith(name === "other" ? "other-" : "reported ")) t += sample.parts[k]; return t; }
  return sample.parts[name] || 0; }
function draw(history) {
  const c = document.getElementById("chart"), g = c.getContext("2d"), W = c.width, H = c.height, pad = 48;
  c.dataset.samples = String(history.length);
  g.clearRect(0, 0, W, H);
  const totals = history.map(s => PARTS.reduce((t, p) => t + valueOf(s, p[0]), 0));
  let max = 1; history.forEach((s, i) => { max = Math.max(max, totals[i], s.rssBytes || 0); });
  const x = i => pad + (history.length < 2 ? 0 : (i * (W - pad - 8)) / (history.length - 1));
  const y = v => H - 20 - (v * (H - 30)) / max;
  g.fillStyle = "#666"; g.font = "11px sans-serif";
  for (let k = 0; k <= 4; k++) { const v = (max * k) / 4; g.fillText(fmt(v), 2, y(v) + 4);
    g.strokeStyle = "#eee"; g.beginPath(); g.moveTo(pad, y(v)); g.lineTo(W - 8, y(v)); g.stroke(); }
  const base = history.map(() => 0);
  for (const [name, color] of PARTS) {
    const top = history.map((s, i) => base[i] + valueOf(s, name));
    if (top.every((v, i) => v === base[i])) continue;
    g.fillStyle = color; g.beginPath();
    history.forEach((_, i) => (i ? g.lineTo(x(i), y(top[i])) : g.moveTo(x(i), y(top[i]))));
    for (let i = history.length - 1; i >= 0; i--) g.lineTo(x(i), y(base[i]));
    g.closePath(); g.fill();
    top.forEach((v, i) => { base[i] = v; });
  }
  g.strokeStyle = "#000"; g.beginPath();
  history.forEach((s, i) => (i ? g.lineTo(x(i), y(s.rssBytes || 0)) : g.moveTo(x(i), y(s.rssBytes || 0)))); g.stroke();
  const legend = document.getElementById("legend"); legend.replaceChildren();
  const last = history[history.length - 1] || { parts: {} };
  for (const [name, color, label] of PARTS) {
    const has = name === "unattributed" || (name === "other" || name === "reported" ? valueOf(last, name) > 0 : last.parts[name] !== undefined);
    if (!has) continue;
    const v = name === "unattributed" ? last.unattributedBytes : valueOf(last, name);
    const span = el("span", label + " " + fmt(v)); const box = el("i", ""); box.style.background = color; span.prepend(box); legend.append(span);
  }
  legend.append(el("span", "— RSS " + fmt(last.rssBytes)));
}
function render(d) {
  const s = d.snapshot;
  document.getElementById("pid").textContent = "pid " + s.pid;
  const a = (s.allocators || []).find((x) => x.servesMalloc);
  const heap = a ? a.allocator + (a.version ? " " + a.version : "") : "allocator unknown";
  document.getElementById("summary").textContent = s.time + " · " + heap + " · RSS " + fmt(s.breakdown ? s.breakdown.rssBytes : undefined) + " · " + d.history.length + " samples";
  const ul = document.getElementById("findings"); ul.replaceChildren();
  for (const f of s.findings || []) ul.append(el("li", f.message, f.severity === "warn" ? "warn" : ""));
  if (!(s.findings || []).length) ul.append(el("li", "none"));
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
       a.residentBytes !== undefined ? "resident " + fmt(a.residentBytes) : null, "rss " + fmt(s.breakdown.rssBytes)].filter(Boolean).join(" → ") +
      (c.fragmentationRatio !== undefined ? "   (rss/allocated " + c.fragmentationRatio + ")" : "")
    : "(no allocator figures)";
}
async function tick() {
  try {
    const r = await fetch(location.pathname + "?format=json&history=1", { headers: { accept: "application/json" } });
    if (!r.ok) throw new Error(r.status + " " + (await r.text()));
    const d = await r.json();
    draw(d.history); render(d); document.getElementById("error").textContent = "";
  } catch (e) { document.getElementById("error").textContent = "update failed: " + e.message; }
}
tick(); setInterval(tick, ${Math.max(250, Math.round(pollMs))});
</script>
</body></html>
`;
}
