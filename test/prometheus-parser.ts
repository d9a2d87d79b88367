/**
 * A strict parser of the Prometheus text exposition format 0.0.4, written for the tests from the
 * format's specification: every line is a HELP, a TYPE, another comment, empty, or a sample; names and label names match
 * their grammars; label values are properly escaped; a family's HELP and TYPE come once, before its
 * samples, and its samples are contiguous; no series repeats; values are floats (or NaN/±Inf).
 */
export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedFamily {
  name: string;
  help?: string;
  type?: string;
  samples: ParsedSample[];
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const types = ["counter", "gauge", "histogram", "summary", "untyped"];

function fail(line: number, message: string): never {
  throw new Error(`exposition line ${line}: ${message}`);
}

function parseValue(text: string, line: number): number {
  if (text === "NaN") return Number.NaN;
  if (text === "+Inf" || text === "Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(text)) fail(line, `bad value ${JSON.stringify(text)}`);
  return Number(text);
}

function parseLabels(text: string, line: number): [Record<string, string>, string] {
  const labels: Record<string, string> = {};
  let rest = text;
  while (!rest.startsWith("}")) {
    const n = labelName.exec(rest);
    if (!n) fail(line, `bad label name at ${JSON.stringify(rest.slice(0, 20))}`);
    const name = n[0];
    rest = rest.slice(name.length);
    if (!rest.startsWith('="')) fail(line, `expected =" after label ${name}`);
    rest = rest.slice(2);
    let value = "";
    for (;;) {
      const c = rest[0];
      if (c === undefined) fail(line, "unterminated label value");
      if (c === '"') break;
      if (c === "\n") fail(line, "raw newline in label value");
      if (c === "\\") {
        const e = rest[1];
        if (e === "\\") value += "\\";
        else if (e === '"') value += '"';
        else if (e === "n") value += "\n";
        else fail(line, `bad escape \\${e ?? ""}`);
        rest = rest.slice(2);
      } else {
        value += c;
        rest = rest.slice(1);
      }
    }
    rest = rest.slice(1);
    if (name in labels) fail(line, `label ${name} twice`);
    labels[name] = value;
    if (rest.startsWith(",")) rest = rest.slice(1);
    else if (!rest.startsWith("}")) fail(line, `expected , or } after label ${name}`);
  }
  return [labels, rest.slice(1)];
}

export function parseExposition(text: string): ParsedFamily[] {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const families = new Map<string, ParsedFamily>();
  const seen = new Set<string>();
  let current: ParsedFamily | undefined;
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw === "") return; // the format ignores empty lines (prom-client separates families with one)
    if (raw.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(raw);
      if (!m) {
        if (/^# (HELP|TYPE)/.test(raw)) fail(line, "malformed HELP/TYPE");
        return; // other comments are allowed
      }
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!metricName.test(name) || metricName.exec(name)?.[0] !== name) fail(line, `bad metric name ${name}`);
      let f = families.get(name);
      if (f && f.samples.length > 0) fail(line, `${kind} of ${name} after its samples`);
      if (!f) {
        f = { name, samples: [] };
        families.set(name, f);
      }
      if (kind === "HELP") {
        if (f.help !== undefined) fail(line, `second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) fail(line, "bad escape in HELP");
        f.help = rest;
      } else {
        if (f.type !== undefined) fail(line, `second TYPE for ${name}`);
        if (!types.includes(rest)) fail(line, `bad type ${rest}`);
        f.type = rest;
      }
      current = f;
      return;
    }
    const n = metricName.exec(raw);
    if (!n) fail(line, "sample without a metric name");
    const name = n[0];
    let rest = raw.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) [labels, rest] = parseLabels(rest.slice(1), line);
    if (!rest.startsWith(" ")) fail(line, "expected a space before the value");
    const parts = rest.slice(1).split(" ");
    if (parts.length > 2) fail(line, "too many fields");
    const value = parseValue(parts[0] as string, line);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) fail(line, "bad timestamp");
    const family = families.get(name);
    if (!family) fail(line, `sample of ${name} without HELP/TYPE`);
    if (family !== current) fail(line, `samples of ${name} are not contiguous`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) fail(line, `series repeated: ${key}`);
    seen.add(key);
    family.samples.push({ name, labels, value });
  });
  return [...families.values()];
}
