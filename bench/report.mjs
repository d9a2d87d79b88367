// The run written out: bench/results.json and .md (or .artifacts/ for a smoke run), the scaling
// curves as SVG, and docs/performance.md's table of targets.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeDocBlock } from "../scripts/doc-block.mjs";
import { log, root, round, smoke } from "./common.mjs";

/** Writes the run's files and prints its table. */
export function writeReport(results, { fastFloor, fastFloorP99 }) {
  const ip = results.inProcess;
  const load = results.underLoad;
  const md = [];
  const m = results.machine;
  md.push(
    `Measured ${m.date.slice(0, 10)} on ${m.cpuModel} (${m.cpus} CPUs), kernel ${m.kernel}, Node ${m.node}, ${m.libc?.family ?? ""} ${m.libc?.version ?? ""}${smoke ? " — SMOKE RUN, not for judging speed" : ""}.`,
  );
  md.push("", "| target | measured | goal | |", "|---|---|---|---|");
  for (const t of results.targets)
    md.push(`| ${t.name} | ${t.value} ${t.unit} | ${t.limit} ${t.unit} | ${t.met ? "met" : "**missed**"} |`);
  md.push("", "Measured beside the misses:", "", ...results.evidence.map((e) => `- ${e}`));
  md.push("", "| in process | median µs | p99 µs |", "|---|---|---|");
  md.push(
    `| floor: status + cgroup values + mallinfo2 + V8 statistics (C, kept descriptors) | ${round(fastFloor, 2)} | ${round(fastFloorP99, 2)} |`,
  );
  for (const [name, r] of Object.entries(ip)) md.push(`| ${name} | ${r.medianUs ?? r.error} | ${r.p99Us ?? ""} |`);
  md.push("", "| floor (C, one pread of a kept descriptor) | median µs | p99 µs | bytes |", "|---|---|---|---|");
  for (const [name, r] of Object.entries(results.floor))
    if (r) md.push(`| ${name} | ${r.medianUs} | ${r.p99Us} | ${r.bytes ?? ""} |`);
  md.push("", "| whole command | median ms |", "|---|---|");
  for (const [name, v] of Object.entries(results.commands)) md.push(`| ${name} | ${v} |`);
  md.push(
    "",
    "| smaps: regions | bytes | read floor µs | read µs | parse µs | parse MB/s | read+parse ÷ floor | pmap -X ms | pmap ÷ heapstate | JS heap kept KiB |",
    "|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const r of results.smapsScaling)
    md.push(
      `| ${r.regions} | ${r.smapsBytes} | ${r.readFloorUs} | ${r.readUs} | ${r.parseUs} | ${r.parseMBs} | ${r.readParseOverFloor} | ${r.pmapMs} | ${r.pmapOverHeapstate} | ${r.heapKeptKiB} |`,
    );
  md.push(
    "",
    `| smaps_rollup: RSS MiB | rollup floor µs | fast µs | standard µs | standard ÷ (floor + fast) |`,
    "|---|---|---|---|---|",
  );
  for (const r of results.rollupScaling)
    md.push(`| ${r.rssMiB} | ${r.rollupFloorUs} | ${r.fastUs} | ${r.standardUs} | ${r.standardOverFloorPlusFast} |`);
  md.push("", `smaps_rollup costs about ${results.rollupMsPerGiB} ms per GiB of RSS here.`);
  md.push(
    "",
    "| glibc: free chunks | mallinfo2 ms | worst malloc stall, other thread, own arena µs | same, MALLOC_ARENA_MAX=1 µs |",
    "|---|---|---|---|",
  );
  for (const r of results.glibcScaling)
    md.push(`| ${r.freeChunks} | ${r.mallinfo2Ms} | ${r.worstStallOtherArenaUs} | ${r.worstStallSharedArenaUs} |`);
  md.push("", "| jemalloc: threads | arenas | epoch + 6 reads µs | p99 µs |", "|---|---|---|---|");
  for (const r of results.jemallocScaling)
    md.push(`| ${r.threads} | ${r.narenas ?? ""} | ${r.epochAnd6ReadsUs ?? r.error} | ${r.p99Us ?? ""} |`);
  md.push(
    "",
    `Footprint: loading heapstate and collecting twice added ${results.footprint.loadMiB} MiB of RSS (${results.footprint.loadAnonMiB} MiB anonymous; the rest is code and files). After a warm-up, ${results.footprint.collects} more fast collects changed malloc's allocated bytes by ${results.footprint.mallocGrowthKiB} KiB, V8's used heap by ${results.footprint.v8UsedGrowthKiB} KiB, and RSS by ${results.footprint.rssGrowthMiB} MiB (V8 keeps pages committed for the garbage each reading makes).`,
  );

  md.push("", "| footprint (fresh processes, median) | step | RSS added MiB | anonymous MiB |", "|---|---|---|---|");
  for (const r of results.footprintRows)
    for (const x of r.steps) md.push(`| ${r.context} | ${x.step} | ${x.rssMiB} | ${x.anonMiB} |`);
  md.push(
    "",
    `(contexts: "empty" a bare \`node\`; "service" one that has served and fetched 200 HTTP requests first; "prom-client" one that has loaded prom-client. Steps run in order in the same process: "fast" is the first fast reading after the require.)`,
  );
  md.push(
    "",
    "| V8 heap allocated per reading | readings | bytes per reading | of which the reading itself keeps |",
    "|---|---|---|---|",
  );
  for (const a of results.allocation)
    md.push(
      `| ${a.tier} | ${a.readings} | ${a.bytesPerReading ?? `not measured: ${a.gcsDuring} collections ran`} | ${a.keptBytesPerReading} |`,
    );
  md.push(
    "",
    `Soak: ${results.soak.collects} standard readings: RSS ${results.soak.rssGrowthMiB} MiB, V8's young generation ${results.soak.youngGenerationMiB?.join(" → ")} MiB, live memory (malloc + V8 used) judged ${results.soak.judgedGrowthKiB} KiB; per-call time against the kernel's drifted ${results.soak.drift}×.`,
  );
  md.push(
    "",
    `| a service under ${load.rate} req/s (${load.concurrency} connections, ${load.seconds} s, median of ${load.runs} runs each) | p50 µs | p99 µs | CPU % of a core | requests |`,
    "|---|---|---|---|---|",
    `| without heapstate | ${load.without.p50Us} | ${load.without.p99Us} | ${load.without.cpuPercentOfCore} | ${load.without.requests} |`,
    `| with the handler scraped at 1 Hz (?format=prometheus) and its sampler every 2 s | ${load.with.p50Us} | ${load.with.p99Us} | ${load.with.cpuPercentOfCore} | ${load.with.requests} |`,
  );
  const sc = results.samplingCost;
  if (sc)
    md.push(
      "",
      `| the same service, jemalloc preloaded, no heapstate (${sc.rate} req/s, ${sc.seconds} s, median of ${sc.runs} runs each) | CPU % of a core | RSS MiB | p99 µs |`,
      "|---|---|---|---|",
      `| jemalloc as is | ${sc.plain.cpuPercentOfCore} | ${sc.plain.rssMiB} | ${sc.plain.p99Us} |`,
      `| with its sampled profile on (MALLOC_CONF=prof:true,lg_prof_sample:19: what native sites read) | ${sc.sampled.cpuPercentOfCore} | ${sc.sampled.rssMiB} | ${sc.sampled.p99Us} |`,
      `| added | ${sc.addedCpuPercentOfCore} (runs without spread ${sc.cpuSpreadPlain}) | ${sc.addedRssPercent} % | |`,
    );
  const gs = results.glibcSamplerCost;
  if (gs)
    md.push(
      "",
      `| the same service under glibc, no heapstate (${gs.rate} req/s, ${gs.seconds} s, median of ${gs.runs} runs each) | CPU % of a core | RSS MiB | p99 µs |`,
      "|---|---|---|---|",
      `| glibc as is | ${gs.plain.cpuPercentOfCore} | ${gs.plain.rssMiB} | ${gs.plain.p99Us} |`,
      `| with heapstate's sampler preloaded (LD_PRELOAD=$(npx heapstate sampler-path): what native sites read under glibc) | ${gs.sampled.cpuPercentOfCore} | ${gs.sampled.rssMiB} | ${gs.sampled.p99Us} |`,
      `| added | ${gs.addedCpuPercentOfCore} (runs without spread ${gs.cpuSpreadPlain}) | ${gs.addedRssPercent} % | |`,
    );
  const si = results.samplerInstructions;
  if (si)
    md.push(
      "",
      `The glibc sampler's own instructions per malloc(64)/free pair (callgrind, ${si.pairs} pairs, start-up subtracted): ${si.addedPerPair} (${si.plainPerPair} → ${si.sampledPerPair}).`,
    );
  md.push(
    "",
    "| glibc: live threads | arenas | free chunks | mallinfo2 ms | malloc_info ms |",
    "|---|---|---|---|---|",
  );
  for (const r of results.arenaScaling)
    md.push(`| ${r.threads} | ${r.arenas} | ${r.freeChunks} | ${r.mallinfo2Ms} | ${r.mallocInfoMs} |`);
  // The stall a reading imposes on the service's other threads: glibc's walk holds each arena's lock
  // for as long as it runs, so the stall of one reading is the walk's cost; the back-off decides how
  // often, and a walk past 20 ms is not repeated by a repeated reader.
  const stallRows = [
    ...results.glibcScaling.map((r) => ({ what: `${r.freeChunks} free chunks`, walkMs: r.mallinfo2Ms })),
    ...results.arenaScaling.map((r) => ({
      what: `${r.arenas} arenas, ${r.freeChunks} free chunks`,
      walkMs: r.mallinfo2Ms,
    })),
  ];
  md.push(
    "",
    "| glibc heap | worst stall of one fast or standard reading (its walk) ms | repeated by a scrape at 1 Hz every | CPU share of one core at 1 Hz |",
    "|---|---|---|---|",
  );
  for (const r of stallRows) {
    const every = r.walkMs < 1 ? 1000 : r.walkMs > 20 ? Number.POSITIVE_INFINITY : Math.max(10_000, r.walkMs / 0.01);
    md.push(
      `| ${r.what} | ${r.walkMs} | ${every === Number.POSITIVE_INFINITY ? "never (past the 20 ms bound: one-shot readings only)" : `${every / 1000} s`} | ${every === Number.POSITIVE_INFINITY ? "0" : round((r.walkMs / every) * 100, 3)} % |`,
    );
  }
  md.push("", "The deep tier's malloc_info walk holds the same locks; its cost is in the arenas table.");
  // Which tier fits 1 Hz within 1% of one core (10 ms a reading) at each size measured here.
  const deepest = (r) =>
    r.deepUs <= 10_000 ? "deep" : r.standardUs <= 10_000 ? "standard" : r.fastUs <= 10_000 ? "fast" : "none";
  md.push(
    "",
    "| RSS MiB | fast µs | standard µs | deep µs | deepest tier at 1 Hz within 1% of a core |",
    "|---|---|---|---|---|",
  );
  for (const r of results.rollupScaling)
    md.push(`| ${r.rssMiB} | ${r.fastUs} | ${r.standardUs} | ${r.deepUs} | ${deepest(r)} |`);
  for (const x of results.smapsScalingSkipped) md.push("", `${x.regions} mappings: not measured (${x.reason}).`);
  md.push(
    "",
    "| mappings | deep tier's smaps read+parse ms | fits 1 Hz within 1% with the deep tier |",
    "|---|---|---|",
  );
  for (const r of results.smapsScaling)
    md.push(
      `| ${r.regions} | ${round(r.readParseUs / 1000, 2)} | ${r.readParseUs <= 10_000 ? "yes" : "no: standard"} |`,
    );

  // The curves, drawn as SVG: each tier's cost against RSS, and the deep tier's smaps cost against
  // the number of mappings (log scales).
  function plot(title, xLabel, series, xs) {
    const W = 480;
    const H = 300;
    const L = 60;
    const B = 40;
    const all = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0);
    const lo = Math.log10(Math.min(...all) / 1.5);
    const hi = Math.log10(Math.max(...all) * 1.5);
    const xlo = Math.min(...xs);
    const xhi = Math.max(...xs);
    const X = (x) => L + ((x - xlo) / (xhi - xlo || 1)) * (W - L - 20);
    const Y = (v) => H - B - ((Math.log10(v) - lo) / (hi - lo)) * (H - B - 30);
    const out = [`<g><text x="${W / 2}" y="18" text-anchor="middle" font-weight="bold">${title}</text>`];
    out.push(
      `<line x1="${L}" y1="${H - B}" x2="${W - 10}" y2="${H - B}" stroke="#888"/><line x1="${L}" y1="20" x2="${L}" y2="${H - B}" stroke="#888"/>`,
    );
    for (let e = Math.ceil(lo); e <= Math.floor(hi); e++)
      out.push(
        `<text x="${L - 6}" y="${Y(10 ** e) + 4}" text-anchor="end" font-size="11">${10 ** e >= 1000 ? `${10 ** (e - 3)} ms` : `${10 ** e} µs`}</text><line x1="${L}" y1="${Y(10 ** e)}" x2="${W - 10}" y2="${Y(10 ** e)}" stroke="#eee"/>`,
      );
    for (const x of xs) out.push(`<text x="${X(x)}" y="${H - B + 16}" text-anchor="middle" font-size="11">${x}</text>`);
    out.push(`<text x="${W / 2}" y="${H - 6}" text-anchor="middle" font-size="12">${xLabel}</text>`);
    out.push(
      `<line x1="${L}" y1="${Y(10_000)}" x2="${W - 10}" y2="${Y(10_000)}" stroke="#c00" stroke-dasharray="4 3"/><text x="${W - 12}" y="${Y(10_000) - 4}" text-anchor="end" font-size="11" fill="#c00">1% of a core at 1 Hz</text>`,
    );
    series.forEach((s, k) => {
      const pts = s.points.filter((p) => p[1] > 0);
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ")}"/>`,
      );
      out.push(`<text x="${L + 8}" y="${36 + k * 14}" font-size="11" fill="${s.color}">${s.name}</text>`);
    });
    out.push("</g>");
    return out.join("\n");
  }
  const rssXs = results.rollupScaling.map((r) => r.rssMiB);
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="960" height="300" font-family="sans-serif" font-size="12" role="img">`,
    "<title>heapstate: the cost of one reading by RSS and by mappings</title>",
    plot(
      "cost of one reading by RSS",
      "RSS, MiB",
      [
        { name: "fast", color: "#4e79a7", points: results.rollupScaling.map((r) => [r.rssMiB, r.fastUs]) },
        { name: "standard", color: "#f28e2b", points: results.rollupScaling.map((r) => [r.rssMiB, r.standardUs]) },
        { name: "deep", color: "#e15759", points: results.rollupScaling.map((r) => [r.rssMiB, r.deepUs]) },
      ],
      rssXs,
    ),
    `<g transform="translate(480,0)">`,
    plot(
      "smaps read+parse by mappings (deep tier)",
      "mappings",
      [
        {
          name: "heapstate read+parse",
          color: "#e15759",
          points: results.smapsScaling.map((r) => [r.regions, r.readParseUs]),
        },
        {
          name: "kernel's own read (C floor)",
          color: "#59a14f",
          points: results.smapsScaling.map((r) => [r.regions, r.readFloorUs]),
        },
      ],
      results.smapsScaling.map((r) => r.regions),
    ),
    "</g>",
    "</svg>",
  ].join("\n");

  const outDir = smoke ? join(root, ".artifacts") : join(root, "bench");
  mkdirSync(outDir, { recursive: true });
  const base = smoke ? "bench-smoke" : "results";
  writeFileSync(join(outDir, `${base}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, `${base}.md`), `${md.join("\n")}\n`);
  writeFileSync(join(outDir, smoke ? "bench-smoke-scaling.svg" : "scaling.svg"), `${svg}\n`);
  if (!smoke) {
    // docs/performance.md's table of the targets, between its markers, from this run.
    const table = [
      `Measured ${m.date.slice(0, 10)} by \`npm run bench\` (${m.cpus} CPUs, Node ${m.node}); every row in [bench/results.md](../bench/results.md); the reasons for each miss below.`,
      "",
      "| target | measured | goal | |",
      "|---|---|---|---|",
      ...results.targets.map(
        (t) =>
          `| ${t.name} | ${t.value ?? "not measured"} ${t.unit} | ${t.limit} ${t.unit} | ${t.met ? "met" : "**missed**"} |`,
      ),
      "",
      "Measured beside the misses, in the same run:",
      "",
      ...results.evidence.map((e) => `- ${e}`),
    ].join("\n");
    writeDocBlock(join(root, "docs", "performance.md"), "bench:targets", table);
    // The README's headline: the rows a user weighs first, with their goals and whether met.
    const pick = (prefix) =>
      results.targets.find(
        (t) => t.name.startsWith(prefix) && (prefix !== "RSS growth over" || t.name.includes("standard")),
      );
    const headline = [
      "fast collect ÷ Σ floors",
      "fast collect ÷ prom-client memory metrics",
      "V8 heap allocated per fast reading",
      "cached snapshot()",
      "RSS growth over",
      'require("heapstate") in a process that has served HTTP: RSS added',
      "a sampler at 1 Hz with peaks on",
      "a service at",
      "… its p99 latency change",
    ]
      .map(pick)
      .filter((t) => t !== undefined)
      .map(
        (t) =>
          `| ${t.name} | ${t.value ?? "not measured"} ${t.unit} | ${t.limit} ${t.unit} | ${t.met ? "met" : "**missed**"} |`,
      );
    writeDocBlock(
      join(root, "README.md"),
      "bench:headline",
      [
        `Measured ${m.date.slice(0, 10)} by \`npm run bench\` on ${m.cpus} CPUs, Node ${m.node}, side by side in one run; every target, and the measured reason for each miss: [performance](docs/performance.md).`,
        "",
        "| | measured | goal | |",
        "|---|---|---|---|",
        ...headline,
      ].join("\n"),
    );
  }
  console.log(md.join("\n"));
  log(`written: ${join(outDir, `${base}.json`)} and .md`);
}
