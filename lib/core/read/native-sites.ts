/**
 * The native heap by allocation site, for a deep reading that asks (`nativeSites`): jemalloc's
 * sampled heap profile, or heapstate's own sampler's (native/sampler, preloaded in front of
 * glibc), dumped into a file in a directory only this user can enter (made for it, 0700, and
 * removed with the file), read back (at most 64 MiB), or tcmalloc's heap sample handed over as
 * text; parsed and named in TypeScript. Where none serves malloc or it samples nothing, a warning
 * says how to turn one on; nothing is guessed.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { native } from "../addon/native";
import { type HeapProfile, heapSites, parseHeapProfile, parseHeapSample } from "../allocators/heap-profile";
import { nowMicros } from "../base/backoff";
import { errorText } from "../base/errors";
import type { AllocatorState, NativeSites, Warning } from "../model/types";

const MAX_PROFILE = 64 * 1024 * 1024;
const ENABLE =
  "start node with MALLOC_CONF=prof:true,prof_active:false,lg_prof_sample:19 (jemalloc preloaded with LD_PRELOAD, Debian's libjemalloc2 profiles) and switch sampling on when wanted";
const ENABLE_TCMALLOC =
  "start node with TCMALLOC_SAMPLE_PARAMETER=524288 and gperftools' full libtcmalloc.so.4 preloaded (Debian's libgoogle-perftools4; libtcmalloc_minimal samples nothing)";
/** How to sample glibc's malloc: heapstate's own sampler in front of it. */
export const ENABLE_SAMPLER =
  "start node with LD_PRELOAD=$(npx heapstate sampler-path) (heapstate's sampler in front of glibc's malloc, one sample per 512 KiB on average)";

type SitesSource = "jemalloc" | "tcmalloc" | "heapstate sampler";

function sitesWarning(message: string, source: SitesSource = "jemalloc"): Warning {
  return { source: source === "heapstate sampler" ? "glibc" : source, code: "NATIVE_SITES_UNAVAILABLE", message };
}

/** The sites, or undefined with a warning saying why there are none. */
export function readNativeSites(
  heap: AllocatorState | undefined,
  top: number,
  warnings: Warning[],
): NativeSites | undefined {
  const start = nowMicros();
  const binding = native();
  const sampler = binding?.samplerStats?.();
  const jemallocProf = heap?.allocator === "jemalloc" && heap.servesMalloc && heap.config?.prof === true;
  if (heap?.allocator === "tcmalloc" && heap.servesMalloc && sampler === undefined)
    return tcmallocSites(heap, top, warnings, start);
  if (sampler !== undefined && heap !== undefined && !jemallocProf) {
    if (sampler[0] === 0) {
      warnings.push(
        sitesWarning("heapstate's sampler is loaded with sampling off (HEAPSTATE_SAMPLE_BYTES=0)", "heapstate sampler"),
      );
      return undefined;
    }
    const sites = dumped("heapstate sampler", (file) => binding?.samplerDump?.(file) ?? 2, heap, top, warnings, start);
    const [, , , dropped, resident] = sampler;
    if (sites !== undefined && dropped !== undefined && dropped > 0) sites.droppedSamples = dropped;
    if (sites !== undefined && resident !== undefined) sites.samplerResidentBytes = resident;
    return sites;
  }
  if (heap?.allocator !== "jemalloc" || !heap.servesMalloc || binding?.profDump === undefined) {
    const glibc = heap?.allocator === "glibc" ? `${ENABLE_SAMPLER}; or ` : "";
    warnings.push(
      sitesWarning(
        `the native heap's allocation sites come from a sampled heap profile (jemalloc's, tcmalloc's or heapstate's sampler's), and ${heap?.allocator ?? "no readable allocator"} serves malloc here without one: ${glibc}${ENABLE}; or ${ENABLE_TCMALLOC}`,
      ),
    );
    return undefined;
  }
  if (heap.config?.prof !== true) {
    warnings.push(sitesWarning(`jemalloc serves malloc without profiling (opt.prof is off): ${ENABLE}`));
    return undefined;
  }
  if (heap.config?.profActive !== true) {
    warnings.push(
      sitesWarning(
        "jemalloc's profiling is on but not sampling (prof.active is false): the profile holds only what was sampled while it was active",
      ),
    );
  }
  const profDump = binding.profDump;
  return dumped("jemalloc prof.dump", (file) => profDump(file), heap, top, warnings, start);
}

/** A profile the allocator (or the sampler) writes into a private file, read back and named. */
function dumped(
  source: "jemalloc prof.dump" | "heapstate sampler",
  dump: (file: string) => number,
  heap: AllocatorState,
  top: number,
  warnings: Warning[],
  start: number,
): NativeSites | undefined {
  const who = source === "heapstate sampler" ? "heapstate's sampler" : "jemalloc's prof.dump";
  const from: SitesSource = source === "heapstate sampler" ? source : "jemalloc";
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), "heapstate-prof-"));
    const file = join(dir, "heap");
    const rc = dump(file);
    if (rc !== 0) {
      warnings.push(sitesWarning(`${who} failed (error ${rc})`, from));
      return undefined;
    }
    const st = statSync(file);
    if (!st.isFile() || st.size > MAX_PROFILE) {
      warnings.push(sitesWarning(`${who}'s heap profile is ${st.size} bytes, more than the ${MAX_PROFILE} read`, from));
      return undefined;
    }
    return named(source, parseHeapProfile(readFileSync(file, "latin1")), heap, top, start);
  } catch (error) {
    warnings.push(sitesWarning(`${who}'s heap profile could not be read: ${errorText(error)}`, from));
    return undefined;
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/** A parsed profile's sites, named from the files mapped (the executable: the one mapped from offset 0). */
function named(
  source: NativeSites["source"],
  profile: HeapProfile,
  heap: AllocatorState,
  top: number,
  start: number,
): NativeSites {
  const executable = profile.mappings.find((m) => m.offset === 0)?.path;
  return { source, ...heapSites(profile, heap.library, executable, top), costMicros: nowMicros() - start };
}

/** tcmalloc's sites: its heap sample, when it samples (TCMALLOC_SAMPLE_PARAMETER above 0). */
function tcmallocSites(heap: AllocatorState, top: number, warnings: Warning[], start: number): NativeSites | undefined {
  const warn = (message: string) => {
    warnings.push(sitesWarning(message, "tcmalloc"));
    return undefined;
  };
  let text: string | undefined;
  try {
    text = native()?.heapSample?.();
  } catch (error) {
    return warn(`tcmalloc's heap sample could not be taken: ${errorText(error)}`);
  }
  if (text === undefined) return warn(`this tcmalloc gives no heap sample (no GetHeapSample): ${ENABLE_TCMALLOC}`);
  if (text.length > MAX_PROFILE)
    return warn(`tcmalloc's heap sample is ${text.length} bytes, more than the ${MAX_PROFILE} read`);
  try {
    const profile = parseHeapSample(text);
    if (profile.period <= 0) return warn(`tcmalloc serves malloc without sampling: ${ENABLE_TCMALLOC}`);
    return named("tcmalloc GetHeapSample", profile, heap, top, start);
  } catch (error) {
    return warn(`tcmalloc's heap sample could not be read: ${errorText(error)}`);
  }
}
