// A job's script compiled once into an async function, and run with a time limit. Errors are
// reported with the script's own line:col, never the wrapper's.
import vm from "node:vm";
import type { MU } from "./mu.js";
import { sharedBuiltinNames, type Logger, type SharedBuiltins } from "./builtins.js";

/** Per-task values are arguments of their own so that running a script allocates nothing else. */
export type CompiledScript = (task: MU, logger: Logger, shared: SharedBuiltins) => Promise<unknown>;

/** The wrapper sits on the script's first line, so script line N is line N of the compiled source. */
const header = `(async function (task, logger, { ${sharedBuiltinNames.join(", ")} }) {`;

export function compileScript(jobName: string, script: string): CompiledScript {
  const source = `${header}${script}\n})`;
  return new vm.Script(source, { filename: scriptFilename(jobName) }).runInThisContext() as CompiledScript;
}

function scriptFilename(jobName: string): string {
  return `job:${jobName}`;
}

/** `message (line L:C)`, with the position inside the script when the stack shows it. */
export function describeScriptError(jobName: string, err: unknown): string {
  const message = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
  const position = err instanceof Error ? scriptPosition(jobName, err) : undefined;
  return position ? `${message} (line ${position.line}:${position.column})` : message;
}

function scriptPosition(jobName: string, err: Error): { line: number; column: number } | undefined {
  const file = scriptFilename(jobName).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const match = new RegExp(`${file}:(\\d+):(\\d+)`).exec(err.stack ?? "");
  if (!match) return undefined;
  const line = Number(match[1]);
  const column = Number(match[2]) - (line === 1 ? header.length : 0);
  return { line, column };
}
