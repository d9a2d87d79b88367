import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseStatus } from "../../lib/procfs/status";
import { fixtures } from "../helpers";

describe("parseStatus", () => {
  it("reads the memory lines of a captured /proc/<pid>/status in bytes", () => {
    const text = readFileSync(join(fixtures, "procfs", "v1-hybrid", "proc", "4242", "status"), "utf8");
    const kB = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(text)?.[1]) * 1024;
    expect(parseStatus(text)).toEqual({
      rssBytes: kB("VmRSS"),
      rssAnonBytes: kB("RssAnon"),
      rssFileBytes: kB("RssFile"),
      rssShmemBytes: kB("RssShmem"),
      peakRssBytes: kB("VmHWM"),
      vmSizeBytes: kB("VmSize"),
      swapBytes: kB("VmSwap"),
      threads: Number(/^Threads:\s+(\d+)$/m.exec(text)?.[1]),
    });
  });

  it("agrees with the kernel's statm for this process", () => {
    const status = parseStatus(readFileSync("/proc/self/status", "utf8"));
    const statm = readFileSync("/proc/self/statm", "utf8").split(" ").map(Number);
    // statm's resident pages and status's VmRSS come from the same counters, a few pages apart
    // at most between the two reads.
    expect(Math.abs((status.rssBytes as number) - (statm[1] as number) * 4096)).toBeLessThan(1024 * 1024);
  });

  it("leaves absent what is missing or malformed, never 0 or NaN", () => {
    expect(parseStatus("")).toEqual({});
    expect(parseStatus("VmRSS:\tlots kB\nRssAnon:\t-5 kB\nVmSwap:\t12 MB\nVmHWM: 99999999999999999999 kB")).toEqual({});
    expect(parseStatus("VmRSS:\t100 kB\nVmRSS:\t200 kB")).toEqual({ rssBytes: 100 * 1024 });
    expect(parseStatus("\u0000\u0001binary\nVmRSS:\t7 kB")).toEqual({ rssBytes: 7 * 1024 });
  });
});
