/**
 * The allocators' counters for one reading, as read() gives them, through the addon's
 * readNumbers(): the counters come as numbers in a buffer reused across readings instead of an
 * object with a key per counter built by the addon (with glibc that reply cost about 6 µs and
 * 1 KiB a reading, with jemalloc's thirty counters about 30 µs), and are put under their names
 * here; with `files`, the reading's kernel files are read in the same call. What does not change while the same objects are loaded (the instances' descriptions, the
 * version and option texts) is asked once per discovery and kept.
 */

import type { RawValue } from "../model/types";
import type { FilesAhead } from "./kernel-files";
import type { NativeBinding, NativeDiscovery, NativeReadInstance, NativeReading } from "./native";

export interface ReadRequest {
  glibc: boolean;
  mallocInfo: boolean;
  onlyGlibc?: boolean;
}

/** What readNumbers() said with `describe` for one kind of request, kept while the discovery holds. */
interface Described {
  adds: number;
  subs: number;
  discovery: NativeDiscovery;
  texts: string[];
}

/** The errors of an instance that had none: frozen, shared by every reading. */
const NO_ERRORS: Record<string, number> = Object.freeze({}) as Record<string, number>;

const KIND_NUMBER = 0;
const KIND_FLAG = 1;

let buffer = new Float64Array(1024);
/** Names of the ids readNumbers() has used, fetched as new ids appear. */
const names: string[] = [];
/** Per kind of request (glibc walked or not, glibc alone or not): the texts differ between them. */
const described = new Map<string, Described>();

function nameOf(binding: NativeBinding, id: number): string | undefined {
  if (id >= names.length) names.push(...(binding.counterNames?.(names.length) ?? []));
  return names[id];
}

/**
 * The reading read() would give for `request`. malloc_info (a text the size of the heap's
 * description) and addons without readNumbers go through read(). When the set of loaded objects
 * changed since what was kept, or the kept texts do not match, the reading is taken again with
 * read() (the counters are then read twice in that reading; it happens when a library that
 * defines an allocator is loaded or unloaded).
 */
export function readAllocators(binding: NativeBinding, request: ReadRequest, files?: FilesAhead): NativeReading {
  if (request.mallocInfo || binding.readNumbers === undefined) return binding.read(request);
  const key = `${request.glibc ? 1 : 0}${request.onlyGlibc ? 1 : 0}`;
  let kept = described.get(key);
  const options = { glibc: request.glibc, onlyGlibc: request.onlyGlibc === true, describe: kept === undefined };
  // The kernel files a reading reads ahead come in the same call when asked (kernel-files.ts).
  const answer = files
    ? binding.readNumbers(buffer, options, files.out, files.lengths, files.generation, files.result)
    : binding.readNumbers(buffer, options);
  const count = typeof answer === "number" ? answer : answer.count;
  if (count < 0) {
    // More instances than the buffer holds: a larger one next time, read() now.
    buffer = new Float64Array(-count * 2);
    return binding.read(request);
  }
  const adds = buffer[0] as number;
  const subs = buffer[1] as number;
  if (typeof answer !== "number") {
    kept = { adds, subs, discovery: answer, texts: answer.texts };
    described.set(key, kept);
  } else if (kept === undefined || kept.adds !== adds || kept.subs !== subs) {
    described.delete(key);
    return binding.read(request);
  }
  const decoded = decode(binding, kept as Described, count);
  if (decoded === undefined) {
    described.delete(key);
    return binding.read(request);
  }
  return decoded;
}

/** The buffer's instances under their names; undefined when it does not match what was kept. */
function decode(binding: NativeBinding, kept: Described, count: number): NativeReading | undefined {
  const b = buffer;
  const instances: NativeReadInstance[] = [];
  let at = 3;
  let text = 0;
  const n = b[2] as number;
  for (let k = 0; k < n; k++) {
    const d = kept.discovery.instances[b[at] as number];
    const nValues = b[at + 1] as number;
    const nErrors = b[at + 2] as number;
    at += 3;
    if (d === undefined || at + 2 * (nValues + nErrors) > count) return undefined;
    const values: Record<string, RawValue> = {};
    for (let i = 0; i < nValues; i++, at += 2) {
      const tag = b[at] as number;
      const kind = tag % 4;
      const name = nameOf(binding, (tag - kind) / 4);
      if (name === undefined) return undefined;
      if (kind === KIND_NUMBER) values[name] = b[at + 1] as number;
      else if (kind === KIND_FLAG) values[name] = b[at + 1] === 1;
      else {
        const t = kept.texts[text++];
        if (t === undefined) return undefined;
        values[name] = t;
      }
    }
    // No errors (the usual case): one shared empty record, not one per instance per reading.
    const errors: Record<string, number> = nErrors === 0 ? NO_ERRORS : {};
    for (let i = 0; i < nErrors; i++, at += 2) {
      const name = nameOf(binding, b[at] as number);
      if (name === undefined) return undefined;
      errors[name] = b[at + 1] as number;
    }
    instances.push({
      allocator: d.allocator,
      library: d.library,
      symbol: d.symbol,
      servesMalloc: d.servesMalloc,
      values,
      errors,
    });
  }
  if (text !== kept.texts.length) return undefined;
  const reading: NativeReading =
    kept.discovery.mallocOwner === undefined
      ? { mainProgramDefinesMalloc: kept.discovery.mainProgramDefinesMalloc, instances }
      : {
          mallocOwner: kept.discovery.mallocOwner,
          mainProgramDefinesMalloc: kept.discovery.mainProgramDefinesMalloc,
          instances,
        };
  return reading;
}
