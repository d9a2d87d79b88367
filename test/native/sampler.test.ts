/**
 * heapstate's glibc sampler (native/sampler) under stress: a C program (test/fixtures/native/
 * sampler-stress.c) runs waves of threads that allocate through every entry point and free each
 * other's blocks, threads exiting while others allocate, and forks whose children allocate, dump
 * and exit; then it holds 64 MiB at one site and dumps. Every block freed on any thread must leave
 * the profile, the children's dumps must succeed, and the held site must come out whole: checked
 * here by parsing the dump with the sites parser, against the program's own count.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { heapSites, parseHeapProfile } from "../../lib/core/allocators/heap-profile";
import { childEnv, fixtures, MiB, samplerLib } from "../helpers";

const stress = join(fixtures, "native", "build", "sampler-stress");
const work = mkdtempSync(join(tmpdir(), "heapstate-sampler-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(period: number | undefined, name: string, slots?: number) {
  const dump = join(work, name);
  const r = spawnSync(stress, [dump, "12"], {
    env: childEnv({
      LD_PRELOAD: samplerLib(),
      HEAPSTATE_SAMPLE_BYTES: period === undefined ? undefined : String(period),
      HEAPSTATE_SAMPLER_SLOTS: slots === undefined ? undefined : String(slots),
    }),
    encoding: "utf8",
    timeout: 120_000,
  });
  expect(r.status, `${r.stderr}\n${r.stdout}`).toBe(0);
  const out = JSON.parse(r.stdout.trim()) as { dump: number; failures: number; holdBytes: number };
  const profile = parseHeapProfile(readFileSync(dump, "latin1"));
  const sites = heapSites(profile, "/lib/x86_64-linux-gnu/libc.so.6", stress, 1000);
  return { out, profile, sites, text: readFileSync(dump, "latin1") };
}

describe("the glibc sampler under threads that free each other's blocks, thread exits and forks", () => {
  it("one sample per 4 KiB: the held site whole within 5 %, everything freed gone from the profile, no sample dropped", () => {
    // About 4 000 samples stay live at the end: a table of 64 Ki slots (its default, 8 Ki, holds
    // about half that before samples are dropped, and counted).
    const { out, profile, sites, text } = run(4096, "dense", 65536);
    expect(out).toMatchObject({ dump: 0, failures: 0 });
    expect(profile.period).toBe(4096);
    const [first, ...rest] = sites.sites;
    expect(first?.frames[0]?.symbol, JSON.stringify(sites.sites.slice(0, 3))).toBe("stress_hold");
    expect(Math.abs((first?.bytes ?? 0) - out.holdBytes)).toBeLessThanOrEqual(0.05 * out.holdBytes);
    // 12 waves of 8 threads × 20 000 blocks (up to 80 KB each) were allocated and freed: what the
    // profile still holds besides the held site is the program's own few blocks.
    const others = rest.reduce((sum, s) => sum + s.bytes, 0);
    expect(others).toBeLessThan(1 * MiB);
    const [, samples, dropped] = /heapstate-sampler: samples (\d+) dropped (\d+)/.exec(text) ?? [];
    expect(Number(samples)).toBeGreaterThan(100_000);
    expect(Number(dropped)).toBe(0);
  });

  it("a table too small for the live samples: the samples it could not keep are counted, not hidden", () => {
    const { out, text } = run(4096, "small", 1024);
    expect(out).toMatchObject({ dump: 0, failures: 0 });
    const [, dropped] = /heapstate-sampler: samples \d+ dropped (\d+)/.exec(text) ?? [];
    expect(Number(dropped)).toBeGreaterThan(1000);
  });

  it("at its default rate (512 KiB): the same program runs and dumps, the held site first", () => {
    const { out, profile, sites } = run(undefined, "default");
    expect(out).toMatchObject({ dump: 0, failures: 0 });
    expect(profile.period).toBe(512 * 1024);
    expect(sites.sites[0]?.frames[0]?.symbol).toBe("stress_hold");
  });
});
