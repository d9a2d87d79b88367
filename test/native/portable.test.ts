/**
 * The prebuilt addon must load wherever Node's official binaries run, and heapstate must tell
 * which platform it is on. Independent sources: readelf for ELF facts, Debian 11's own glibc for
 * "older than the build machine", Debian's musl-gcc for a musl executable.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { chooseAddon } from "../../lib/core/addon/native";
import { elfInterpreter, libcOfInterpreter, platformInfo } from "../../lib/core/addon/platform";
import type { Snapshot } from "../../lib/core/model/types";
import { compareVersions, highestByNamespace, versionNeeds } from "../../scripts/elf-needs.cjs";
import { childEnv, dist, fixtures, parseJson, root, scaled } from "../helpers";

const built = join(fixtures, "native", "build");
const muslProgram = join(built, "tiny-musl");
const staticProgram = join(built, "tiny-static");
const prebuild = join(root, "prebuilds", `linux-${process.arch}`, "heapstate.napi.glibc.node");

/** The interpreter as readelf prints it: "[Requesting program interpreter: /lib/ld-musl-x86_64.so.1]". */
function readelfInterpreter(file: string): string | undefined {
  const out = execFileSync("readelf", ["-l", "-W", file], { encoding: "utf8", maxBuffer: 256 << 20 });
  return /Requesting program interpreter: ([^\]]+)\]/.exec(out)?.[1];
}

describe("which C library an executable uses (its ELF interpreter)", () => {
  it("the running node: the same interpreter readelf reads, and glibc", () => {
    const expected = readelfInterpreter(process.execPath);
    expect(expected).toMatch(/ld-linux/);
    expect(elfInterpreter(process.execPath)).toBe(expected);
    expect(platformInfo().libc).toBe("glibc");
    expect(platformInfo().label).toBe(`linux-${process.arch} (glibc)`);
  });

  it("a program built with Debian's musl-gcc: musl", () => {
    expect(existsSync(muslProgram), `${muslProgram} (npm run build:fixtures; needs musl-tools)`).toBe(true);
    const expected = readelfInterpreter(muslProgram);
    expect(expected).toMatch(/ld-musl-/);
    expect(elfInterpreter(muslProgram)).toBe(expected);
    expect(platformInfo(muslProgram, "linux", process.arch)).toEqual({
      os: "linux",
      arch: process.arch,
      libc: "musl",
      label: `linux-${process.arch} (musl)`,
    });
    // The program really is a musl program: it runs under musl's loader.
    expect(spawnSync(muslProgram).status).toBe(0);
  });

  it("a static program, a text file, a missing file: no interpreter, no libc claimed", () => {
    expect(readelfInterpreter(staticProgram)).toBeUndefined();
    expect(elfInterpreter(staticProgram)).toBeUndefined();
    const text = join(tmpdir(), `heapstate-not-elf-${process.pid}`);
    writeFileSync(text, "#!/bin/sh\necho hello\n");
    expect(elfInterpreter(text)).toBeUndefined();
    const truncated = join(tmpdir(), `heapstate-truncated-elf-${process.pid}`);
    writeFileSync(truncated, readFileSync(process.execPath).subarray(0, 80));
    expect(elfInterpreter(truncated)).toBeUndefined();
    rmSync(text);
    rmSync(truncated);
    expect(elfInterpreter("/nonexistent/heapstate")).toBeUndefined();
    expect(platformInfo(staticProgram, "linux", "x64")).toEqual({ os: "linux", arch: "x64", label: "linux-x64" });
    expect(libcOfInterpreter("/lib/ld-musl-aarch64.so.1")).toBe("musl");
    expect(libcOfInterpreter("/lib/ld-linux-aarch64.so.1")).toBe("glibc");
    expect(libcOfInterpreter("/system/bin/linker64")).toBeUndefined();
  });
});

describe("choosing the addon", () => {
  it("on musl (this package's glibc prebuild cannot load there): NATIVE_UNSUPPORTED_LIBC naming the platform", () => {
    const choice = chooseAddon(platformInfo(muslProgram, "linux", process.arch), {});
    expect(choice.file).toBeUndefined();
    expect(choice.problem?.code).toBe("NATIVE_UNSUPPORTED_LIBC");
    expect(choice.problem?.message).toContain(`no native addon for linux-${process.arch} (musl)`);
    expect(choice.problem?.message).toContain(
      "carries prebuilt addons for linux-arm64 (glibc), linux-x64 (glibc) only",
    );
  });

  it("on macOS or Windows: NATIVE_UNSUPPORTED_PLATFORM naming the platform", () => {
    for (const [os, arch] of [
      ["darwin", "arm64"],
      ["win32", "x64"],
    ] as const) {
      const choice = chooseAddon(platformInfo(process.execPath, os, arch), {});
      expect(choice.problem?.code).toBe("NATIVE_UNSUPPORTED_PLATFORM");
      expect(choice.problem?.message).toContain(`no native addon for ${os}-${arch}:`);
    }
  });

  it("here: the checkout's build (node-gyp-build prefers build/Release), or the prebuild", () => {
    const choice = chooseAddon(platformInfo(), {});
    expect(choice.problem).toBeUndefined();
    expect([join(root, "build", "Release", "heapstate.node"), prebuild]).toContain(choice.file);
  });

  it("HEAPSTATE_NO_NATIVE wins over everything, HEAPSTATE_BINDING over the search", () => {
    expect(chooseAddon(platformInfo(), { HEAPSTATE_NO_NATIVE: "1", HEAPSTATE_BINDING: "/x.node" }).problem?.code).toBe(
      "NATIVE_DISABLED",
    );
    expect(chooseAddon(platformInfo(muslProgram, "linux", "x64"), { HEAPSTATE_BINDING: "/x.node" }).file).toBe(
      "/x.node",
    );
  });
});

describe("the prebuilt addon", () => {
  it("exists after the build, named for node-gyp-build (napi, glibc)", () => {
    expect(existsSync(prebuild), `${prebuild} (npm run build:prebuild makes it; npm test runs it)`).toBe(true);
  });

  it("needs no newer symbol versions than the Node that runs this test (an official build needs glibc 2.28)", () => {
    const mine = highestByNamespace(versionNeeds(prebuild)) as Record<string, string>;
    const node = highestByNamespace(versionNeeds(process.execPath)) as Record<string, string>;
    expect(Object.keys(mine).sort()).toEqual(expect.arrayContaining(["GLIBC"]));
    for (const [ns, version] of Object.entries(mine)) {
      expect(node[ns], `node ${process.version} needs no ${ns} version at all`).toBeDefined();
      expect(
        compareVersions(version, node[ns] as string),
        `${ns}_${version} vs node's ${ns}_${node[ns]}`,
      ).toBeLessThanOrEqual(0);
    }
    // Not one symbol may be bound to a glibc-private or 2.34 version (dl* moved into libc there).
    const text = execFileSync("readelf", ["--dyn-syms", "-W", prebuild], { encoding: "utf8", maxBuffer: 256 << 20 });
    expect(text).not.toMatch(/@GLIBC_(PRIVATE|2\.3[2-9])/);
  });

  describe("under Debian 11's glibc 2.31 (older than the 2.36 it is built with, and than 2.34)", () => {
    const oldRoot = join(fixtures, "old-glibc", "root");
    const versions = join(fixtures, "old-glibc", "versions.json");
    const libdir = join(oldRoot, "lib", "x86_64-linux-gnu");
    const loader = join(libdir, "ld-linux-x86-64.so.2");
    const libraryPath = [libdir, join(oldRoot, "usr", "lib", "x86_64-linux-gnu")].join(":");

    function underOldGlibc(script: string, env: Record<string, string> = {}) {
      expect(existsSync(loader), `${loader} (npm run build:fixtures fetches it from deb.debian.org)`).toBe(true);
      return spawnSync(loader, ["--library-path", libraryPath, process.execPath, "-e", script], {
        env: childEnv({ HEAPSTATE_TEST_DIST: dist, ...env }),
        encoding: "utf8",
        maxBuffer: 256 << 20,
        timeout: scaled(60_000),
      });
    }

    it("the control: an object linked the plain way (dlopen@GLIBC_2.34) is refused there", () => {
      const r = underOldGlibc(`require(${JSON.stringify(join(fixtures, "native", "build", "needs-new-glibc.node"))})`);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("GLIBC_2.34");
    });

    it("the prebuild loads there and reads that glibc's own counters", () => {
      const script = `
        const h = require(process.env.HEAPSTATE_TEST_DIST);
        const s = h.collect();
        console.log(JSON.stringify({ heap: s.heap, warnings: s.warnings }));`;
      // The copy in prebuilds/, not the checkout's build: HEAPSTATE_BINDING names it.
      const r = underOldGlibc(script, { HEAPSTATE_BINDING: prebuild });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      const out = parseJson(r.stdout.trim().split("\n").pop() as string) as Pick<Snapshot, "heap" | "warnings">;
      const libc6 = (JSON.parse(readFileSync(versions, "utf8")) as { packages: { libc6: { version: string } } })
        .packages.libc6.version;
      expect(out.warnings.filter((w) => w.source === "native")).toEqual([]);
      expect(out.heap?.allocator).toBe("glibc");
      expect(out.heap?.library).toBe(join(libdir, "libc.so.6"));
      expect(libc6.startsWith(`${out.heap?.version}-`)).toBe(true); // "2.31" of "2.31-13+deb11u11"
      expect(out.heap?.allocatedBytes).toBeGreaterThan(0);
    });
  });
});

describe("the arm64 prebuild, in Node for arm64 under qemu-user", () => {
  const arm64Prebuild = join(root, "prebuilds", "linux-arm64", "heapstate.napi.glibc.node");
  const arm64Node = join(fixtures, "arm64-node", "node");
  // Debian's cross runtime (libc6-arm64-cross, libstdc++6-arm64-cross): the arm64 glibc and libstdc++.
  const sysroot = "/usr/aarch64-linux-gnu";
  const qemu = "/usr/bin/qemu-aarch64";

  function underQemu(script: string, env: Record<string, string> = {}) {
    for (const [file, from] of [
      [arm64Node, "npm run build:fixtures fetches it"],
      [qemu, "apt-get install qemu-user"],
      [join(sysroot, "lib", "libc.so.6"), "apt-get install g++-aarch64-linux-gnu"],
    ] as const) {
      expect(existsSync(file), `${file} (${from})`).toBe(true);
    }
    return spawnSync(qemu, ["-L", sysroot, arm64Node, "-e", script], {
      env: childEnv({ HEAPSTATE_TEST_DIST: dist, ...env }),
      encoding: "utf8",
      maxBuffer: 256 << 20,
      timeout: scaled(120_000),
    });
  }

  it("is an AArch64 object that needs no newer symbol versions than Node for arm64", () => {
    expect(existsSync(arm64Prebuild), `${arm64Prebuild} (npm run build:prebuild makes it; npm test runs it)`).toBe(
      true,
    );
    expect(execFileSync("readelf", ["-h", arm64Prebuild], { encoding: "utf8", maxBuffer: 256 << 20 })).toMatch(
      /Machine:\s+AArch64/,
    );
    const mine = highestByNamespace(versionNeeds(arm64Prebuild));
    const node = highestByNamespace(versionNeeds(arm64Node));
    expect(Object.keys(mine)).toContain("GLIBC");
    for (const [ns, version] of Object.entries(mine)) {
      expect(node[ns], `Node for arm64 needs no ${ns} version at all`).toBeDefined();
      expect(compareVersions(version, node[ns] as string), `${ns}_${version} vs ${ns}_${node[ns]}`).toBeLessThanOrEqual(
        0,
      );
    }
  });

  it("loads, reads the arm64 glibc's counters, and the platform is named linux-arm64 (glibc)", () => {
    const r = underQemu(
      `const h = require(process.env.HEAPSTATE_TEST_DIST);
       const s = h.collect();
       console.log(JSON.stringify({ arch: process.arch, heap: s.heap, warnings: s.warnings, addon: h.hostInfo().addon }));`,
      { HEAPSTATE_BINDING: arm64Prebuild },
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const out = parseJson(r.stdout.trim().split("\n").pop() as string) as Pick<Snapshot, "heap" | "warnings"> & {
      arch: string;
      addon: { platform: string; loaded: boolean };
    };
    expect(out.arch).toBe("arm64");
    expect(out.addon).toMatchObject({ platform: "linux-arm64 (glibc)", loaded: true });
    expect(out.warnings.filter((w) => w.source === "native")).toEqual([]);
    expect(out.heap?.allocator).toBe("glibc");
    // The version that Debian's cross package of glibc says it is ("2.36-8cross1" → "2.36").
    const cross = execFileSync("dpkg-query", ["-W", "-f", "$" + "{Version}", "libc6-arm64-cross"], {
      encoding: "utf8",
      maxBuffer: 256 << 20,
    });
    expect(cross.startsWith(`${out.heap?.version}-`)).toBe(true);
    expect(out.heap?.allocatedBytes).toBeGreaterThan(0);
  });
});
