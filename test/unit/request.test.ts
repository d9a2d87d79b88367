/**
 * One parser for what faces are asked to read (core/read/request.ts): the CLI's flags, the HTTP
 * query, the agent's JSON and the Vitest setup's environment give the same error for the same
 * wrong value, each naming the field as that face spells it.
 */
import { describe, expect, it } from "vitest";
import { parseReadRequest, TOP_MAX } from "../../lib/core/read/request";

const faces = [
  { tier: "--tier", top: "--top" },
  { tier: "tier", top: "top" },
  { tier: "HEAPSTATE_VITEST_TIER", top: "top" },
];

describe("parseReadRequest", () => {
  it("defaults to standard, and to deep when top or the face's own deep asks for it", () => {
    expect(parseReadRequest({})).toEqual({ tier: "standard" });
    expect(parseReadRequest({ tier: null, top: null })).toEqual({ tier: "standard" });
    expect(parseReadRequest({ top: "12" })).toEqual({ tier: "deep", top: 12 });
    expect(parseReadRequest({ top: 12 })).toEqual({ tier: "deep", top: 12 });
    expect(parseReadRequest({ deep: true })).toEqual({ tier: "deep" });
    expect(parseReadRequest({ tier: "fast" })).toEqual({ tier: "fast" });
    expect(parseReadRequest({ tier: "deep", top: String(TOP_MAX) })).toEqual({ tier: "deep", top: TOP_MAX });
  });

  it("the same wrong value is the same error in every face, named as the face spells it", () => {
    for (const names of faces) {
      for (const bad of ["stnadard", "", "DEEP", " fast"]) {
        expect(parseReadRequest({ tier: bad }, names)).toEqual({
          error: `${names.tier} must be fast, standard or deep, received ${JSON.stringify(bad)}`,
        });
      }
      expect(parseReadRequest({ tier: 3 }, names)).toEqual({
        error: `${names.tier} must be fast, standard or deep, received "3"`,
      });
      for (const bad of ["0", "-1", "1001", "1e3", "0x10", "+5", "12.5", "", 0, 2.5, Number.NaN]) {
        const r = parseReadRequest({ top: bad }, names);
        expect(r, String(bad)).toEqual({
          error: `${names.top} must be a whole number from 1 to ${TOP_MAX}, received ${JSON.stringify(String(bad))}`,
        });
      }
      expect(parseReadRequest({ tier: "fast", top: "3" }, names)).toEqual({
        error: `${names.top} needs the deep tier`,
      });
    }
  });

  it("a face that asks for deep its own way names that way when another tier is given", () => {
    const names = { tier: "--tier", top: "--top", deep: "--deep, --top and --addresses" };
    expect(parseReadRequest({ tier: "standard", deep: true }, names)).toEqual({
      error: "--deep, --top and --addresses need the deep tier",
    });
  });

  it("a value from outside is quoted and cut, never printed whole", () => {
    const long = `x${"\u001b[2J".repeat(100)}`;
    const r = parseReadRequest({ tier: long }) as { error: string };
    expect(r.error.length).toBeLessThan(200);
    expect(r.error).not.toContain("\u001b");
  });
});
