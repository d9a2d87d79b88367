import { availableParallelism, loadavg } from "node:os";
import { defineConfig } from "vitest/config";

// On a busy shared host a test's children run slower: the time allowed grows with the load per
// CPU at the start of the run (up to four times); test/helpers.ts scales its children's timeouts
// by the same factor (HEAPSTATE_TEST_TIME_SCALE).
const scale = Math.min(4, Math.max(1, (loadavg()[0] ?? 0) / availableParallelism()));
process.env.HEAPSTATE_TEST_TIME_SCALE ??= scale.toFixed(2);

export default defineConfig({
  test: {
    testTimeout: Math.round(60_000 * scale),
    hookTimeout: Math.round(60_000 * scale),
    pool: "forks",
    // What a run leaves in the temporary directory is removed (and named) at its end.
    globalSetup: ["test/global-tmp.ts"],
    // A test that asserts nothing fails: it would pass whatever the code does.
    expect: { requireAssertions: true },
    projects: [
      // The unit tests share one process per worker (no fresh module state per file): what lasts
      // between readings lives in a HeapProcess each test can make, not in module variables.
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"], isolate: false } },
      { extends: true, test: { name: "processes", include: ["test/{native,e2e,truth}/**/*.test.ts"] } },
    ],
  },
});
