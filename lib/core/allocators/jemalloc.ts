/**
 * jemalloc: mallctl counters → AllocatorState. Sources (jemalloc 5.3 names):
 * allocated/active/resident/mapped/metadata/retained ← `stats.*`; arenas ← `arenas.narenas`;
 * pages ← `stats.arenas.4096.{pdirty,pmuzzy}` × `arenas.page` (4096 = all arenas merged); the
 * active page count `pactive` stays in `raw` (activeBytes is stats.active: one figure, stored once).
 */

import type { NativeReadInstance } from "../addon/native";
import type { AllocatorState } from "../model/types";
import { bytes, defined, flag, num, str, unmapped } from "./values";

/** The mallctl names a field carries (raw keeps the others). */
const JEMALLOC_MAPPED = [
  "version",
  "stats.allocated",
  "stats.active",
  "stats.resident",
  "stats.mapped",
  "stats.metadata",
  "stats.retained",
  "arenas.narenas",
  "stats.arenas.4096.pdirty",
  "stats.arenas.4096.pmuzzy",
  "config.stats",
  "opt.dirty_decay_ms",
  "opt.muzzy_decay_ms",
  "background_thread",
  "opt.narenas",
  "opt.retain",
  "opt.thp",
  "opt.metadata_thp",
  "opt.percpu_arena",
  "opt.oversize_threshold",
  "opt.tcache",
  "opt.dss",
  "opt.prof",
  "prof.active",
  "opt.lg_prof_sample",
] as const;

export function jemallocState(inst: NativeReadInstance): AllocatorState {
  const v = inst.values;
  const page = bytes(v, "arenas.page");
  const pages = (name: string): number | undefined => {
    const n = bytes(v, `stats.arenas.4096.${name}`);
    return n === undefined || page === undefined ? undefined : n * page;
  };
  return {
    allocator: "jemalloc",
    library: inst.library,
    servesMalloc: inst.servesMalloc,
    ...defined({
      version: str(v, "version"),
      allocatedBytes: bytes(v, "stats.allocated"),
      activeBytes: bytes(v, "stats.active"),
      residentBytes: bytes(v, "stats.resident"),
      mappedBytes: bytes(v, "stats.mapped"),
      metadataBytes: bytes(v, "stats.metadata"),
      retainedBytes: bytes(v, "stats.retained"),
      arenas: bytes(v, "arenas.narenas"),
      pages: defined({
        dirtyBytes: pages("pdirty"),
        muzzyBytes: pages("pmuzzy"),
      }),
      config: defined({
        statsEnabled: flag(v, "config.stats"),
        dirtyDecayMs: num(v, "opt.dirty_decay_ms"),
        muzzyDecayMs: num(v, "opt.muzzy_decay_ms"),
        backgroundThread: flag(v, "background_thread") ?? flag(v, "opt.background_thread"),
        narenas: bytes(v, "opt.narenas"),
        retain: flag(v, "opt.retain"),
        thp: str(v, "opt.thp"),
        metadataThp: str(v, "opt.metadata_thp"),
        percpuArena: str(v, "opt.percpu_arena"),
        oversizeThreshold: bytes(v, "opt.oversize_threshold"),
        tcache: flag(v, "opt.tcache"),
        prof: flag(v, "opt.prof"),
        profActive: flag(v, "prof.active"),
        lgProfSample: bytes(v, "opt.lg_prof_sample"),
        dss: str(v, "opt.dss"),
      }),
    }),
    raw: unmapped(v, JEMALLOC_MAPPED),
  };
}

/**
 * Does a jemalloc that does not serve malloc hold memory: application bytes, or freed pages it
 * keeps resident (dirty, or muzzy until the kernel reclaims them)? jemalloc 5.3 is not 0/0 when
 * dormant: the first mallctl gives the calling thread a tcache, allocated internally (28672 bytes
 * here), so `allocated − internal − tcache_bytes` is the test for application bytes; 0/0 (tcache
 * off) is dormant too. One that allocated and freed keeps its dirty pages (40 MiB after a 96 MiB
 * burst here) and stays in the picture until they are purged. Undefined when the build has no
 * stats and keeps no freed pages (it cannot say).
 */
export function jemallocHoldsBytes(inst: NativeReadInstance): boolean | undefined {
  const v = inst.values;
  const allocated = bytes(v, "stats.allocated");
  const active = bytes(v, "stats.active");
  const kept = (bytes(v, "stats.arenas.4096.pdirty") ?? 0) + (bytes(v, "stats.arenas.4096.pmuzzy") ?? 0);
  if (kept > 0) return true;
  // Without stats, active pages may be its own bootstrap (the tcache) or application bytes.
  if (allocated === undefined) return undefined;
  if (allocated === 0 && active === 0) return false;
  const internal = bytes(v, "stats.arenas.4096.internal") ?? 0;
  const tcache = bytes(v, "stats.arenas.4096.tcache_bytes") ?? 0;
  return allocated - internal - tcache > 0;
}
