/** --watch: a reading every few seconds, with what changed since the first. */

import type { Snapshot } from "../../core";
import { formatBytes, keyFigures, rows } from "../../core";
import { formatHuman } from "../format";
import { type CliIo, EXIT, fail } from "./io";
import { read, type ShowOptions } from "./reading";

function signed(n: number | undefined): string {
  if (n === undefined) return "";
  return n > 0 ? ` (+${formatBytes(n)})` : n < 0 ? ` (${formatBytes(n)})` : " (±0)";
}

/** The watch line's figures: the reading's key figures (the core's `keyFigures`). */
export function watchFigures(s: Snapshot): Array<[string, number | undefined]> {
  const k = keyFigures(s);
  return [
    ["rss", k.rssBytes],
    [`heap ${k.nativeHeap?.counter ?? "allocated"}`, k.nativeHeap?.bytes],
    ["v8 used", k.v8HeapUsedBytes],
    ["unattributed", k.unattributedBytes],
  ];
}

export function watch(
  o: ShowOptions,
  seconds: number,
  count: number | undefined,
  io: CliIo,
  reader: () => Promise<{ snapshot: Snapshot; source: "self" | "agent" | "procfs" }> = async () => ({
    snapshot: read(o),
    source: "self",
  }),
): Promise<number> {
  return new Promise((resolve) => {
    let start: Snapshot | undefined;
    let ticks = 0;
    let timer: NodeJS.Timeout | undefined;
    const stop = (code: number) => {
      if (timer) clearTimeout(timer);
      process.removeListener("SIGINT", onInt);
      resolve(code);
    };
    const onInt = () => {
      if (io.isTTY) io.out("");
      stop(EXIT.ok);
    };
    process.once("SIGINT", onInt);
    const tick = async () => {
      let s: Snapshot;
      let source: string;
      try {
        ({ snapshot: s, source } = await reader());
      } catch (error) {
        stop(fail(error, io));
        return;
      }
      const by = source === "agent" ? `  (read by process ${s.pid}'s own agent)` : "";
      start ??= s;
      ticks++;
      const base = new Map(watchFigures(start));
      if (o.json) {
        io.out(JSON.stringify({ ...s, readBy: source }));
      } else if (io.isTTY) {
        const figures = watchFigures(s).map(([k, v]): [string, string] => [
          k,
          `${formatBytes(v).padStart(10)}${ticks > 1 && v !== undefined ? signed(v - (base.get(k) ?? v)) : ""}`,
        ]);
        io.out(
          `\x1b[H\x1b[2J${o.paint.bold(`heapstate --watch ${seconds}s  reading ${ticks}  (changes since ${start.time}; Ctrl-C stops)${by}`)}\n${rows(figures, "  ").join("\n")}\n\n${formatHuman(s, { width: o.width })}`,
        );
      } else {
        const parts = watchFigures(s).map(([k, v]) => {
          const b = base.get(k);
          return `${k} ${formatBytes(v)}${ticks > 1 && v !== undefined && b !== undefined ? signed(v - b) : ""}`;
        });
        io.out(`${s.time}  ${parts.join("  ")}${by}`);
      }
      if (count !== undefined && ticks >= count) stop(EXIT.ok);
      else timer = setTimeout(() => void tick(), seconds * 1000);
    };
    void tick();
  });
}
