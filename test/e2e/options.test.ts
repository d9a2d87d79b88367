/**
 * Every public function's options, as a careless or hostile caller passes them: arbitrary values
 * (fast-check), strings where booleans belong ("false" once switched a safety on), timers Node would
 * turn into a 1 ms loop, unknown keys, getters that throw, proxies. Each call either works or
 * throws HeapstateError("INVALID_OPTION") naming the option; never another exception.
 */
import { AggregationTemporality, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import fc from "fast-check";
import client from "prom-client";
import { describe, expect, it } from "vitest";
import { HeapstateError } from "../../lib/core/base/errors";
import { registerOtel } from "../../lib/faces/metrics/otel";
import { registerPrometheus } from "../../lib/faces/metrics/prometheus";
import { start } from "../../lib/faces/sidecar";
import { heapstate } from "../../lib/faces/vitest/plugin";
import { HeapstateReporter } from "../../lib/faces/vitest/reporter";
import {
  clearBaseline,
  collect,
  collectTree,
  createHandler,
  hostInfo,
  hostProcesses,
  memoryField,
  registerMemoryReporter,
  type Sampler,
  setBaseline,
  snapshot,
  startAgent,
  startAutoTrim,
  startSampler,
} from "../../lib/index";

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
  override selectAggregationTemporality(): AggregationTemporality {
    return AggregationTemporality.CUMULATIVE;
  }
}

const meter = new MeterProvider({ readers: [new TestReader()] }).getMeter("options-test");

/** Each public function that takes options, called with `o`; what it returns is cleaned up. */
const entryPoints: Record<string, { keys: string[]; call: (o: unknown) => void }> = {
  collect: { keys: ["tier", "pid", "includeAddresses", "procRoot", "fsRoot"], call: (o) => collect(o as never) },
  snapshot: { keys: ["maxAgeMs"], call: (o) => snapshot(o as never) },
  createHandler: {
    keys: [
      "path",
      "allowRemote",
      "allowedHosts",
      "includeAddresses",
      "includePaths",
      "includeEnvironment",
      "trim",
      "sampler",
    ],
    call: (o) => createHandler(o as never),
  },
  startSampler: {
    keys: ["intervalMs", "size", "tier", "resetPeak"],
    call: (o) => (startSampler(o as never) as Sampler).stop(),
  },
  startAutoTrim: {
    keys: ["intervalMs", "minReleasableBytes", "maxPauseMs"],
    call: (o) => startAutoTrim(o as never).stop(),
  },
  setBaseline: {
    keys: ["budgets", "snapshot"],
    call: (o) => {
      setBaseline(o as never);
      clearBaseline();
    },
  },
  registerMemoryReporter: {
    keys: ["kind"],
    call: (o) => registerMemoryReporter("options-test", () => ({ allocatedBytes: 1 }), o as never)(),
  },
  registerPrometheus: {
    keys: ["prefix", "maxAgeMs", "client", "registry", "resetPeak", "labels"],
    call: (o) => {
      // Without a registry option it registers on prom-client's default one: emptied each time.
      client.register.clear();
      registerPrometheus(o as never);
    },
  },
  registerOtel: { keys: ["maxAgeMs"], call: (o) => registerOtel(meter, o as never)() },
  memoryField: { keys: ["maxAgeMs"], call: (o) => memoryField(o as never) },
  hostInfo: { keys: ["procRoot", "sysRoot"], call: (o) => hostInfo(o as never) },
  hostProcesses: { keys: ["all", "tier", "exclude"], call: (o) => hostProcesses(o as never) },
  collectTree: {
    keys: ["pid", "tier"],
    call: (o) => {
      try {
        collectTree(o as never);
      } catch (error) {
        // A well-formed pid of no process is an answer, not a bad option.
        if (!(error instanceof HeapstateError && error.code === "NO_SUCH_PROCESS")) throw error;
      }
    },
  },
  "heapstate() Vitest plugin": {
    keys: ["tier", "gc", "outputFile", "budgets", "baseline", "top", "print", "write"],
    call: (o) => heapstate(o as never),
  },
  startAgent: { keys: ["trim"], call: (o) => startAgent(o as never).stop() },
  "sidecar start": { keys: ["tier", "gc", "resetPeak"], call: (o) => start("options-test", o as never) },
  "vitest reporter": {
    keys: ["outputFile", "budgets", "baseline", "top", "print", "write"],
    call: (o) => new HeapstateReporter(o as never),
  },
};

/** Calls and classifies: "ok", or the code of our error; anything else fails the test. */
function outcome(call: () => void): string {
  try {
    call();
    return "ok";
  } catch (error) {
    if (error instanceof HeapstateError) return error.code;
    throw new Error(`not the package's error: ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`);
  }
}

const nasty = fc.oneof(
  fc.constantFrom(
    "false",
    "true",
    "no",
    "0",
    "",
    "0x10",
    "1e3",
    "Infinity",
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    2 ** 31,
    2 ** 53,
    -1,
    0,
    1.5,
    null,
    [],
    {},
    [1, 2],
    () => 1,
    Symbol("x"),
    10n,
  ),
  fc.anything({ withBigInt: true, withNullPrototype: true, withObjectString: true, withMap: true, withSet: true }),
);

/** Values that break code reading them carelessly: each is a fresh object, as a getter may run once. */
function hostileValues(): [string, unknown][] {
  const sparse: unknown[] = [];
  sparse[1] = "x";
  const throwingEntry: unknown[] = [];
  Object.defineProperty(throwingEntry, 0, {
    enumerable: true,
    get() {
      throw new TypeError("entry getter");
    },
  });
  const throwingObject = Object.defineProperty({}, "a", {
    enumerable: true,
    get() {
      throw new TypeError("property getter");
    },
  });
  const revokedArray = Proxy.revocable([], {});
  revokedArray.revoke();
  const revokedObject = Proxy.revocable({}, {});
  revokedObject.revoke();
  const lyingArray = new Proxy(["a"], {
    get(target, p) {
      if (p === "length") return 2 ** 32 - 1;
      return Reflect.get(target, p);
    },
  });
  return [
    ["[undefined]", [undefined]],
    ["[null]", [null]],
    ["a sparse array", sparse],
    ["an array with a throwing entry", throwingEntry],
    ["an object with a throwing getter", throwingObject],
    ["a revoked proxy of an array", revokedArray.proxy],
    ["a revoked proxy of an object", revokedObject.proxy],
    ["an array proxy whose length lies", lyingArray],
    ["[{}]", [{}]],
    ["[[]]", [[]]],
  ];
}

describe("every public function's options", () => {
  for (const [name, entry] of Object.entries(entryPoints)) {
    it(`${name}: arbitrary options work or give INVALID_OPTION, never another exception`, () => {
      const key = fc.constantFrom(...entry.keys, "__proto__", "constructor", "toString", `${entry.keys[0]} `, "x");
      fc.assert(
        fc.property(fc.oneof(nasty, fc.dictionary(key, nasty, { maxKeys: 4 })), (o) => {
          expect(["ok", "INVALID_OPTION"]).toContain(outcome(() => entry.call(o)));
        }),
        { numRuns: name === "collect" || name === "sidecar start" ? 60 : 150 },
      );
    });

    it(`${name}: hostile values under every key (holes, undefined entries, throwing getters, revoked proxies) give INVALID_OPTION or work`, () => {
      for (const key of entry.keys) {
        for (const [label, value] of hostileValues()) {
          let got: string;
          try {
            got = outcome(() => entry.call({ [key]: value }));
          } catch (error) {
            throw new Error(`${key}: ${label}: ${(error as Error).message}`);
          }
          expect(["ok", "INVALID_OPTION"], `${key}: ${label}`).toContain(got);
        }
      }
    });

    it(`${name}: an unknown key is named, with the closest known one`, () => {
      const known = entry.keys[0] as string;
      const misspelt = `${known.slice(0, -1)}${known.endsWith("s") ? "z" : "s"}`;
      expect(() => entry.call({ [misspelt]: 1 })).toThrow(
        new RegExp(`unknown option "${misspelt}".*did you mean "${known}"`),
      );
    });

    it(`${name}: getters that throw and proxies give INVALID_OPTION`, () => {
      const key = entry.keys[0] as string;
      const getter = Object.defineProperty({}, key, {
        enumerable: true,
        get() {
          throw new TypeError("boom");
        },
      });
      expect(outcome(() => entry.call(getter))).toBe("INVALID_OPTION");
      const trap = new Proxy(
        {},
        {
          ownKeys() {
            throw new RangeError("trap");
          },
        },
      );
      expect(outcome(() => entry.call(trap))).toBe("INVALID_OPTION");
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      expect(outcome(() => entry.call(proxy))).toBe("INVALID_OPTION");
    });
  }
});

describe("a string is never a boolean", () => {
  it("createHandler: allowRemote, trim, includePaths, includeAddresses, includeEnvironment", () => {
    // Before: "false" turned remote access and trim on, "no" showed paths and addresses.
    for (const [key, value] of [
      ["allowRemote", "false"],
      ["trim", "false"],
      ["includePaths", "no"],
      ["includeAddresses", "no"],
      ["includeEnvironment", "0"],
    ] as const) {
      expect(() => createHandler({ [key]: value } as never), key).toThrow(
        new RegExp(`createHandler\\(options\\): ${key} must be true or false, received a string "${value}"`),
      );
    }
  });

  it("collect, sidecar start and the reporter", () => {
    expect(() => collect({ includeAddresses: "no" } as never)).toThrow(/includeAddresses must be true or false/);
    expect(() => start("x", { gc: "false" } as never)).toThrow(/gc must be true or false/);
    expect(() => new HeapstateReporter({ print: "false" } as never)).toThrow(/print must be true or false/);
  });
});

describe("timers", () => {
  it("an interval of 2³¹ ms or more, Infinity or NaN is an error, not a 1 ms loop", () => {
    for (const intervalMs of [2 ** 31, 2 ** 40, Number.POSITIVE_INFINITY, Number.NaN, 99]) {
      expect(() => startSampler({ intervalMs }), String(intervalMs)).toThrow(
        /startSampler\(options\): intervalMs must be a number from 100 to 2147483647/,
      );
      expect(() => createHandler({ sampler: { intervalMs } }), String(intervalMs)).toThrow(
        /intervalMs must be a number/,
      );
    }
    for (const maxAgeMs of [Number.NaN, -1, Number.POSITIVE_INFINITY, "1000"]) {
      expect(() => snapshot({ maxAgeMs } as never)).toThrow(/maxAgeMs must be a number/);
      expect(() => memoryField({ maxAgeMs } as never)).toThrow(/maxAgeMs must be a number/);
    }
    const s = startSampler({ intervalMs: 2 ** 31 - 1 });
    expect(s.intervalMs).toBe(2 ** 31 - 1);
    s.stop();
  });
});
