/**
 * glibc malloc (ptmalloc2): mallinfo2 (or mallinfo) → AllocatorState. Sources:
 * allocated ← `uordblks + hblkhd` (in-use chunks in arenas, headers and tcache-cached chunks
 * included, plus chunks served by their own mmap); mapped ← `arena + hblkhd`;
 * pages.freeBytes ← `fordblks` (free, whether still resident or already trimmed: mallinfo2 cannot
 * tell); pages.topReleasableBytes ← `keepcost`; arenas ← the number of `<heap>` in malloc_info.
 */
import type { NativeReadInstance } from "../native";
import type { AllocatorState, Warning } from "../types";
import { parseMallocInfo } from "./malloc-info";
import { bytes, defined, str, sum } from "./values";

export function glibcState(inst: NativeReadInstance, warnings: Warning[]): AllocatorState {
  const v = inst.values;
  const fn = str(v, "function");
  const raw: Record<string, unknown> = { ...v };
  let arenas: number | undefined;
  const xml = str(v, "malloc_info");
  if (xml !== undefined) {
    delete raw.malloc_info;
    try {
      const info = parseMallocInfo(xml);
      raw.malloc_info = info;
      arenas = info.arenas.length;
    } catch (error) {
      warnings.push({ source: "glibc", code: "MALLOC_INFO_UNPARSED", message: (error as Error).message });
    }
  }
  if (fn === "mallinfo") {
    warnings.push({
      source: "glibc",
      code: "GLIBC_MALLINFO_32BIT",
      message: "this glibc has no mallinfo2 (< 2.33); mallinfo's 32-bit counters wrap above 4 GiB",
    });
  }
  if (fn === undefined && inst.errors.mallinfo2 !== undefined) {
    warnings.push({
      source: "glibc",
      code: "GLIBC_NO_MALLINFO",
      message: "glibc exports neither mallinfo2 nor mallinfo",
    });
  }
  return {
    allocator: "glibc",
    library: inst.library,
    servesMalloc: inst.servesMalloc,
    ...defined({
      version: str(v, "gnu_get_libc_version"),
      allocatedBytes: sum(bytes(v, "uordblks"), bytes(v, "hblkhd")),
      mappedBytes: sum(bytes(v, "arena"), bytes(v, "hblkhd")),
      arenas,
      pages: defined({
        freeBytes: bytes(v, "fordblks"),
        topReleasableBytes: bytes(v, "keepcost"),
      }),
    }),
    raw,
  };
}
