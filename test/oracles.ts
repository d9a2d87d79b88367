/**
 * Independent oracles for the exposition formats: Prometheus's own `promtool check metrics` (the
 * linter Prometheus ships), and the Python client library's parsers (Debian's
 * python3-prometheus-client) for the text format and OpenMetrics. Nothing here is heapstate's.
 */
import { spawnSync } from "node:child_process";

/** What `promtool check metrics` says of an exposition ("" when it has nothing to say). */
export function promtoolCheck(text: string): { status: number | null; problems: string } {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  if (r.error) throw new Error(`promtool could not run (apt-get install prometheus): ${r.error.message}`);
  return { status: r.status, problems: `${r.stdout}${r.stderr}`.trim() };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  type: string;
  unit: string;
  help: string;
  samples: Sample[];
}

const PARSE = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families as text
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
parse = om if sys.argv[1] == "openmetrics" else text
out = []
for f in parse(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "unit": f.unit, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]})
print(json.dumps(out))
`;

/** The Python client's parse of an exposition; throws with its error when it refuses the text. */
export function pythonParse(text: string, format: "text" | "openmetrics" = "text"): Family[] {
  const r = spawnSync("/usr/bin/python3", ["-c", PARSE, format], {
    input: text,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  if (r.error) throw new Error(`python3 could not run: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(
      `prometheus_client refused the ${format} exposition:\n${r.stderr.trim().split("\n").slice(-3).join("\n")}`,
    );
  return JSON.parse(r.stdout) as Family[];
}
