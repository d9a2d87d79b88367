/**
 * The two wings' import rule, as `npm run lint` applies it (biome.json's noRestrictedImports
 * overrides): a face imports the core through its index and no other face but the listed shared
 * ones; the core imports no face. Each case is a file linted with the project's own biome.json in a
 * scratch tree of the same shape.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { root } from "../helpers";

const scratch = mkdtempSync(join(tmpdir(), "heapstate-wings-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
copyFileSync(join(root, "biome.json"), join(scratch, "biome.json"));

/** Lints one file at `path` (relative to lib/) holding `source`; answers the restricted imports found. */
function restricted(path: string, source: string): number {
  const file = join(scratch, "lib", path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, source);
  const r = spawnSync(
    join(root, "node_modules", ".bin", "biome"),
    ["lint", "--max-diagnostics=50", join("lib", path)],
    {
      cwd: scratch,
      encoding: "utf8",
    },
  );
  rmSync(file);
  const out = `${r.stdout}${r.stderr}`;
  if (!/Checked 1 file/.test(out)) throw new Error(`biome did not lint ${path}: ${out}`);
  return out.match(/noRestrictedImports/g)?.length ?? 0;
}

describe("the wings' import rule (npm run lint)", () => {
  it("a face importing another face, or the core past its index, fails", () => {
    expect(
      restricted("faces/cli/x.ts", 'import { createHandler } from "../http/handler";\nvoid createHandler;\n'),
    ).toBe(1);
    expect(restricted("faces/log2.ts", 'import { main } from "./cli/main";\nvoid main;\n')).toBe(1);
    expect(
      restricted(
        "faces/cli/x.ts",
        'import { buildBreakdown } from "../../core/model/breakdown";\nvoid buildBreakdown;\n',
      ),
    ).toBe(1);
    expect(
      restricted("faces/log2.ts", 'import type { Snapshot } from "../core/model/types";\nexport type S = Snapshot;\n'),
    ).toBe(1);
  });

  it("a core folder importing one below it in lib/core/README.md's table fails; one above it passes", () => {
    expect(restricted("core/model/x.ts", 'import { collect } from "../read/collect";\nvoid collect;\n')).toBe(1);
    expect(restricted("core/addon/x.ts", 'import { glibcState } from "../allocators/glibc";\nvoid glibcState;\n')).toBe(
      1,
    );
    expect(restricted("core/read/x.ts", 'import { trim } from "../act/trim";\nvoid trim;\n')).toBe(1);
    expect(
      restricted(
        "core/judge/x.ts",
        'import { collect } from "..";\nimport { trim } from "../index";\nvoid collect; void trim;\n',
      ),
    ).toBe(1);
    expect(
      restricted(
        "core/act/x.ts",
        'import { collect } from "../read/collect";\nimport { native } from "../addon/native";\nvoid collect; void native;\n',
      ),
    ).toBe(0);
  });

  it("the core importing a face fails", () => {
    expect(restricted("core/judge/x.ts", 'import { memoryField } from "../../faces/log";\nvoid memoryField;\n')).toBe(
      1,
    );
    expect(restricted("core/x.ts", 'import { startSampler } from "./../faces/sampler";\nvoid startSampler;\n')).toBe(1);
  });

  it("a face may import the core's index, its own folder and the shared faces", () => {
    expect(
      restricted(
        "faces/cli/x.ts",
        'import { collect } from "../../core";\nimport { io } from "./io";\nimport { formatHuman } from "../format";\nimport { agentSocket } from "../agent/client";\nvoid collect; void io; void formatHuman; void agentSocket;\n',
      ),
    ).toBe(0);
    expect(
      restricted(
        "faces/log2.ts",
        'import { collect } from "../core";\nimport { startSampler } from "./sampler";\nvoid collect; void startSampler;\n',
      ),
    ).toBe(0);
  });
});
