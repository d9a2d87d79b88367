// Exercises every native entry point for the sanitizer and valgrind runs (scripts/sanitize.sh,
// scripts/valgrind.sh): readings of every tier (read() and readNumbers()), trim, argument checks,
// short buffers, workers reading at once and one terminated mid-read. Prints "exercise: ok" at the end.
const { Worker, isMainThread, parentPort, workerData } = require("node:worker_threads");
const { join } = require("node:path");
const h = require(join(__dirname, "..", "..", "dist", "index.js"));
const rounds = Number(process.env.HEAPSTATE_EXERCISE_ROUNDS ?? 50);

function worker() {
  if (workerData?.forever) {
    parentPort.postMessage("started");
    // Deep readings go through read(), the others through readNumbers(): terminated in either.
    for (let i = 0; ; i++) h.collect({ tier: i % 2 ? "fast" : "deep" });
  }
  for (let i = 0; i < rounds; i++) h.collect({ tier: i % 2 ? "fast" : "standard" });
  parentPort.postMessage("done");
}

async function main() {
  const s = h.collect({ tier: "deep" });
  // Under ASan, malloc is ASan's own (heapstate says so: ALLOCATOR_UNSUPPORTED); the addon must
  // still be loaded and every reader still runs.
  const nativeProblems = s.warnings.filter((w) => w.source === "native");
  if (nativeProblems.length) throw new Error(`the addon is not in use: ${JSON.stringify(nativeProblems)}`);
  console.log(
    `exercise: malloc served by ${s.heap ? s.heap.library : s.warnings.map((w) => w.code).join(",")}; instances ${JSON.stringify(
      require(process.env.HEAPSTATE_BINDING)
        .discover()
        .instances.map((i) => i.allocator),
    )}`,
  );
  for (let i = 0; i < rounds; i++) h.collect({ tier: ["fast", "standard", "deep"][i % 3] });
  h.trim();
  const binding = require(process.env.HEAPSTATE_BINDING);
  let typeErrors = 0;
  for (const bad of [
    () => binding.read("x"),
    () => binding.read({ glibc: 1 }),
    () => binding.trim([]),
    () => binding.read({ mallocInfo: null }),
  ]) {
    try {
      bad();
    } catch (e) {
      if (e instanceof TypeError) typeErrors++;
    }
  }
  if (typeErrors !== 4) throw new Error(`expected 4 TypeErrors, got ${typeErrors}`);
  // readNumbers into buffers of every short length (nothing may be written past their end), with
  // the discovery described, and its arguments and counterNames' refused or answered.
  for (let length = 0; length < 80; length++) {
    const out = new Float64Array(length);
    const n = binding.readNumbers(out, { describe: length % 2 === 0, glibc: length % 3 !== 0 });
    const count = typeof n === "number" ? n : n.count;
    if (count === 0 || (count > 0 && count > length) || (count < 0 && -count <= length))
      throw new Error(`readNumbers into ${length} doubles answered ${count}`);
  }
  let refused = 0;
  for (const bad of [
    () => binding.readNumbers(),
    () => binding.readNumbers(new Float32Array(8)),
    () => binding.readNumbers(new Float64Array(8), "x"),
    () => binding.readNumbers(new Float64Array(8), { describe: "yes" }),
    () => binding.counterNames(),
    () => binding.counterNames("0"),
  ]) {
    try {
      bad();
    } catch (e) {
      if (e instanceof TypeError) refused++;
    }
  }
  if (refused !== 6) throw new Error(`expected 6 TypeErrors from readNumbers and counterNames, got ${refused}`);
  for (const from of [-1, 0, 1e9, Number.NaN, Number.POSITIVE_INFINITY, 2.5]) {
    if (!Array.isArray(binding.counterNames(from))) throw new Error(`counterNames(${from}) is not a list`);
  }
  // readFiles into buffers of every short length (nothing written past their end), files that
  // exist and that do not, the list kept and replaced; and its arguments refused.
  const files = ["/proc/self/status", "/proc/self/statm", "/nonexistent/heapstate", "/proc/self/smaps_rollup"];
  const generation = binding.keepFiles(files);
  const lengths = new Int32Array(files.length);
  for (let size = 0; size < 4096; size += 97) {
    const n = binding.readFiles(new Uint8Array(size), lengths, generation);
    if (n > size || (n < 0 && -n <= size)) throw new Error(`readFiles into ${size} bytes answered ${n}`);
  }
  const whole = binding.readFiles(new Uint8Array(64 * 1024), lengths, generation);
  if (!(whole > 0) || lengths[0] <= 0 || lengths[2] >= 0) throw new Error(`readFiles answered ${whole}, ${lengths}`);
  if (!Number.isNaN(binding.readFiles(new Uint8Array(64), lengths, generation - 1)))
    throw new Error("readFiles read for another list's generation");
  // The same files read within readNumbers' call, into short and whole buffers, for a stale
  // generation; the counters as without them.
  const result = new Float64Array(1);
  for (const size of [0, 1, 97, 64 * 1024]) {
    const count = binding.readNumbers(new Float64Array(256), {}, new Uint8Array(size), lengths, generation, result);
    if (!(count > 0)) throw new Error(`readNumbers with files answered ${count}`);
    if (result[0] > size || (result[0] < 0 && -result[0] <= size))
      throw new Error(`readNumbers' files into ${size} bytes answered ${result[0]}`);
  }
  binding.readNumbers(new Float64Array(8), {}, new Uint8Array(64), lengths, generation - 1, result);
  if (!Number.isNaN(result[0])) throw new Error("readNumbers read the files for another list's generation");
  for (const bad of [
    () => binding.readNumbers(new Float64Array(8), {}, new Uint8Array(8)),
    () => binding.readNumbers(new Float64Array(8), {}, new Uint8Array(8), lengths, generation, new Float64Array(0)),
    () => binding.readNumbers(new Float64Array(8), {}, new Uint8Array(8), new Uint8Array(4), generation, result),
    () => binding.readNumbers(new Float64Array(8), {}, new Uint8Array(8), lengths, "1", result),
  ]) {
    try {
      bad();
      throw new Error("readNumbers took bad file arguments");
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
    }
  }
  // profDump: a path refused when it is not one; under an allocator without jemalloc's
  // profiling, an error code, never a crash.
  for (const bad of [
    () => binding.profDump(),
    () => binding.profDump(1),
    () => binding.profDump("a\0b"),
    () => binding.profDump(""),
  ]) {
    try {
      bad();
      throw new Error("profDump took a bad path");
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
    }
  }
  const dumped = binding.profDump(
    require("node:path").join(require("node:os").tmpdir(), `heapstate-exercise-${process.pid}.heap`),
  );
  if (typeof dumped !== "number") throw new Error(`profDump answered ${dumped}`);
  // profActive: a boolean only; an answer in numbers (jemalloc's previous value, or minus an error code).
  try {
    binding.profActive("yes");
    throw new Error("profActive took a string");
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
  }
  const was = binding.profActive(false);
  if (typeof was !== "number") throw new Error(`profActive answered ${was}`);
  if (was === 1) binding.profActive(true);
  // heapSample: tcmalloc's heap sample as text, or undefined where no tcmalloc that gives one serves malloc.
  const sample = binding.heapSample();
  if (sample !== undefined && (typeof sample !== "string" || !sample.startsWith("heap profile:")))
    throw new Error(`heapSample answered ${String(sample).slice(0, 80)}`);
  binding.keepFiles(files.slice(0, 1));
  binding.keepFiles([]);
  let filesRefused = 0;
  for (const bad of [
    () => binding.keepFiles(),
    () => binding.keepFiles(["a\0b"]),
    () => binding.keepFiles([1]),
    () => binding.readFiles(new Float64Array(8), new Int32Array(1), 1),
    () => binding.readFiles(new Uint8Array(8), new Int32Array(1)),
  ]) {
    try {
      bad();
    } catch (e) {
      if (e instanceof TypeError) filesRefused++;
    }
  }
  if (filesRefused !== 5) throw new Error(`expected 5 TypeErrors from keepFiles and readFiles, got ${filesRefused}`);
  binding.keepFiles(files);
  const workers = Array.from({ length: 3 }, () => new Worker(__filename));
  await Promise.all(
    workers.map(
      (w) =>
        new Promise((resolve, reject) => {
          w.once("message", resolve);
          w.once("error", reject);
        }),
    ),
  );
  await Promise.all(workers.map((w) => w.terminate()));
  const victim = new Worker(__filename, { workerData: { forever: true } });
  await new Promise((resolve) => victim.once("message", resolve));
  await new Promise((resolve) => setTimeout(resolve, 100));
  await victim.terminate();
  h.collect();
  console.log("exercise: ok");
}

if (isMainThread) main();
else worker();
