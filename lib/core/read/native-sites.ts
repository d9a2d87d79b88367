/**
 * The native heap by allocation site, for a deep reading that asks (`nativeSites`): jemalloc's
 * sampled heap profile dumped by the allocator itself into a file in a directory only this user
 * can enter (made for it, 0700, and removed with the file), read back (at most 64 MiB), or
 * tcmalloc's heap sample handed over as text; parsed and named in TypeScript. Where neither
 * serves malloc or it samples nothing, a warning says how to turn it on; nothing is guessed.
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

function sitesWarning(message: string, source: "jemalloc" | "tcmalloc" = "jemalloc"): Warning {
  return { source, code: "NATIVE_SITES_UNAVAILABLE", message };
}

/** The sites, or undefined with a warning saying why there are none. */
export function readNativeSites(
  heap: AllocatorState | undefined,
  top: number,
  warnings: Warning[],
): NativeSites | undefined {
  const start = nowMicros();
  const binding = native();
  if (heap?.allocator === "tcmalloc" && heap.servesMalloc) return tcmallocSites(heap, top, warnings, start);
  if (heap?.allocator !== "jemalloc" || !heap.servesMalloc || binding?.profDump === undefined) {
    warnings.push(
      sitesWarning(
        `the native heap's allocation sites come from jemalloc's or tcmalloc's sampled heap profile, and ${heap?.allocator ?? "no readable allocator"} serves malloc here: ${ENABLE}; or ${ENABLE_TCMALLOC}`,
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
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), "heapstate-prof-"));
    const file = join(dir, "heap");
    const rc = binding.profDump(file);
    if (rc !== 0) {
      warnings.push(sitesWarning(`jemalloc's prof.dump failed (error ${rc})`));
      return undefined;
    }
    const st = statSync(file);
    if (!st.isFile() || st.size > MAX_PROFILE) {
      warnings.push(sitesWarning(`jemalloc's heap profile is ${st.size} bytes, more than the ${MAX_PROFILE} read`));
      return undefined;
    }
    return named("jemalloc prof.dump", parseHeapProfile(readFileSync(file, "latin1")), heap, top, start);
  } catch (error) {
    warnings.push(sitesWarning(`jemalloc's heap profile could not be read: ${errorText(error)}`));
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
