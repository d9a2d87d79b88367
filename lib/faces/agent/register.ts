/**
 * `node --require heapstate/agent` (or NODE_OPTIONS="--require heapstate/agent"): starts the
 * agent in a process without changing its code. A failure is one line on stderr; the process runs
 * on without the agent.
 */

import { errorText } from "../../core";
import { startAgent } from "./server";

try {
  startAgent();
} catch (error) {
  process.stderr.write(`heapstate agent: not started: ${errorText(error)}\n`);
}
