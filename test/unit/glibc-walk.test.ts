/**
 * The search for glibc's mmapped chunks over a mapping's pages, on memory made up here: whatever a
 * page holds, the search ends; only whole headers count.
 */
import { describe, expect, it } from "vitest";
import { type MappingView, type MmappedChunks, scanMapping } from "../../lib/core/allocators/glibc-walk";

const PAGE = 4096;

/** A mapping of `pages` pages, all resident, whose 8-byte words are `word(addr)`. */
function view(pages: number, word: (addr: number) => number, start = 0x7f0000000000): MappingView {
  return {
    start,
    end: start + pages * PAGE,
    page: PAGE,
    present: () => true,
    u64: (a) => word(a),
    resident: (from, to) => to - from,
  };
}

const empty = (): MmappedChunks => ({ chunks: 0, bytes: 0, absentBytes: 0, complete: false });

describe("scanMapping", () => {
  it("ends on memory that holds 0 and 2 at every page's start (a chunk of no size), finding nothing", () => {
    const v = view(64, (a) => ((a - 0x7f0000000000) % PAGE === 8 ? 2 : 0));
    const into = empty();
    const searched = scanMapping(v, true, 1 << 30, into);
    expect(into.chunks).toBe(0);
    expect(searched).toBe(64 * PAGE);
  });

  it("follows a chain of headers, and in search mode finds one after bytes that are not a header", () => {
    const base = 0x7f0000000000;
    // A chunk of 2 pages at the start, then 3 pages of other data, then a chunk of 4 pages.
    const headers = new Map([
      [base + 8, 2 * PAGE + 2],
      [base + 5 * PAGE + 8, 4 * PAGE + 2],
    ]);
    const v = view(9, (a) => headers.get(a) ?? (a % PAGE === 0 ? 0 : 7));
    const chain = empty();
    scanMapping(v, false, 1 << 30, chain);
    expect(chain).toMatchObject({ chunks: 1, bytes: 2 * PAGE });
    const found = empty();
    scanMapping(v, true, 1 << 30, found);
    expect(found).toMatchObject({ chunks: 2, bytes: 6 * PAGE, absentBytes: 0 });
  });

  it("does not count a header whose size runs past the mapping, and stops at its budget", () => {
    const base = 0x7f0000000000;
    const v = view(4, (a) => (a === base + 8 ? 16 * PAGE + 2 : 0));
    const into = empty();
    const searched = scanMapping(v, true, 2 * PAGE, into);
    expect(into.chunks).toBe(0);
    expect(searched).toBeLessThanOrEqual(3 * PAGE);
  });

  it("spends its budget only on resident pages: a chunk past a long absent stretch is found", () => {
    const base = 0x7f0000000000;
    // 1 000 pages never written (a reservation), then a chunk of 3 pages; a budget of 8 pages.
    const at = base + 1000 * PAGE;
    const v: MappingView = {
      ...view(1003, (a) => (a === at + 8 ? 3 * PAGE + 2 : 0)),
      present: (a) => a >= at,
    };
    const into = empty();
    const searched = scanMapping(v, true, 8 * PAGE, into);
    expect(into).toMatchObject({ chunks: 1, bytes: 3 * PAGE });
    expect(searched).toBe(0);
  });

  it("leaves out the chunks the walk's own buffers are in, and goes on past them", () => {
    const base = 0x7f0000000000;
    // Two chunks of 2 pages each, back to back; the first is the walk's own.
    const headers = new Map([
      [base + 8, 2 * PAGE + 2],
      [base + 2 * PAGE + 8, 2 * PAGE + 2],
    ]);
    const v: MappingView = { ...view(4, (a) => headers.get(a) ?? 0), ours: (a) => a === base };
    const into = empty();
    scanMapping(v, false, 1 << 30, into);
    expect(into).toMatchObject({ chunks: 1, bytes: 2 * PAGE });
  });
});
