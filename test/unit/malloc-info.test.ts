import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseMallocInfo } from "../../lib/core/allocators/malloc-info";
import { HeapstateError } from "../../lib/core/base/errors";
import { fixtures } from "../helpers";

const dir = join(fixtures, "malloc-info");

describe("parseMallocInfo", () => {
  it("agrees with mallinfo2 read at the same moment (node after 16 threadpool jobs)", () => {
    const info = parseMallocInfo(readFileSync(join(dir, "node-threadpool.xml"), "utf8"));
    const mallinfo2 = JSON.parse(readFileSync(join(dir, "node-threadpool.mallinfo2.json"), "utf8")) as Record<
      string,
      number
    >;
    // mallinfo2.arena is the sum of every arena's system_mem; hblks/hblkhd the mmapped chunks.
    const systemSum = info.arenas.reduce((sum, a) => sum + (a.systemBytes ?? Number.NaN), 0);
    expect(systemSum).toBe(mallinfo2.arena);
    expect(info.systemBytes).toBe(mallinfo2.arena);
    expect(info.mmapBytes).toBe(mallinfo2.hblkhd);
    expect(info.mmapChunks).toBe(mallinfo2.hblks);
    expect(info.arenas[0]?.nr).toBe(0);
    expect(info.arenas.map((a) => a.nr)).toEqual(info.arenas.map((_, i) => i));
    // Non-main arenas live in 64 MiB heaps and say how many.
    for (const a of info.arenas.slice(1)) expect(a.subheaps).toBeGreaterThanOrEqual(1);
    expect(info.arenas[0]?.subheaps).toBeUndefined();
  });

  it("reads the per-arena free totals", () => {
    const xml = `<malloc version="1">
<heap nr="0">
<sizes>
  <size from="209" to="209" total="1254" count="6"/>
  <unsorted from="207992897" to="207992897" total="207992897" count="1"/>
</sizes>
<total type="fast" count="0" size="0"/>
<total type="rest" count="8" size="207994743"/>
<system type="current" size="208007168"/>
<system type="max" size="208023552"/>
<aspace type="total" size="208007168"/>
<aspace type="mprotect" size="208007168"/>
</heap>
<total type="fast" count="0" size="0"/>
<total type="rest" count="8" size="207994743"/>
<total type="mmap" count="0" size="0"/>
<system type="current" size="208007168"/>
<system type="max" size="208023552"/>
</malloc>`;
    expect(parseMallocInfo(xml)).toEqual({
      arenas: [
        {
          nr: 0,
          bins: [
            { from: 209, to: 209, total: 1254, count: 6 },
            { from: 207992897, to: 207992897, total: 207992897, count: 1, unsorted: true },
          ],
          fastFreeChunks: 0,
          fastFreeBytes: 0,
          restFreeChunks: 8,
          restFreeBytes: 207994743,
          systemBytes: 208007168,
          maxSystemBytes: 208023552,
          addressSpaceBytes: 208007168,
        },
      ],
      mmapChunks: 0,
      mmapBytes: 0,
      systemBytes: 208007168,
    });
  });

  it("rejects text that is not malloc_info output with the package's error", () => {
    for (const bad of ["", "garbage", "<html></html>", '<malloc version="2">']) {
      expect(() => parseMallocInfo(bad)).toThrow(HeapstateError);
    }
  });

  it("keeps what a truncated document says and invents nothing", () => {
    const xml = readFileSync(join(dir, "node-threadpool.xml"), "utf8");
    for (let cut = 20; cut < xml.length; cut += 97) {
      const info = parseMallocInfo(xml.slice(0, cut));
      for (const { bins, ...a } of info.arenas) {
        for (const v of Object.values(a)) expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
        for (const bin of bins ?? []) {
          for (const v of [bin.from, bin.to, bin.total, bin.count])
            expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
        }
      }
    }
    const mangled = xml.replace(
      /<total type="fast" count="\d+" size="\d+"\/>/,
      '<total type="fast" count="1e400" size="-5"/>',
    );
    const info = parseMallocInfo(mangled);
    expect(info.arenas[0]?.fastFreeBytes).toBeUndefined();
    expect(info.arenas[0]?.fastFreeChunks).toBeUndefined();
  });
});
