/** The package's version, read once from its package.json (dist/core/base/version.js sits three levels below it). */
import { readFileSync } from "node:fs";
import { join } from "node:path";

let version: string | undefined;

export function packageVersion(): string {
  if (version === undefined) {
    try {
      version = (
        JSON.parse(readFileSync(join(__dirname, "..", "..", "..", "package.json"), "utf8")) as { version?: string }
      ).version;
    } catch {
      version = undefined;
    }
    version ??= "unknown";
  }
  return version;
}
