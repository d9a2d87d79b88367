/** The running auto-trim's record, where every reading of this process finds it (collect() adds it). */
import type { AutoTrimState } from "../model/types";

let current: (() => AutoTrimState) | undefined;

export function setAutoTrimState(read: (() => AutoTrimState) | undefined): void {
  current = read;
}

export function autoTrimState(): AutoTrimState | undefined {
  return current?.();
}
