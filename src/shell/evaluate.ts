// Running one block in the shell's context, and telling the user what went wrong in terms of the
// block they typed: the error, the line and column in the block, and that line; never the shell's
// own stack frames.
import vm from "node:vm";
import { inspect } from "node:util";
import type { TransformedBlock } from "./transform.js";
import { BlockCancelled, runningBlock, ShellExit } from "./context.js";
import type { Colors } from "./output.js";

export const blockFilename = "<shell>";

export type BlockOutcome =
  | { kind: "value"; value: unknown }
  | { kind: "error"; error: unknown }
  /** the wait for the block was abandoned (it may go on) */
  | { kind: "cancelled" }
  /** SIGINT stopped the block's synchronous start (see runBlock's `whileSynchronous`) */
  | { kind: "interrupted" }
  | { kind: "exit"; code: number };

/**
 * Run the block; `signal` abandons the wait: the shell's own waits (waitfor, sleep) end at once, and
 * what is left of the block can no longer use the shell's builtins (see runningBlock).
 * `whileSynchronous`, if given, wraps the block's start, up to its first `await`: a SIGINT then
 * stops it, even in a loop that never yields (a terminal sends SIGINT for Ctrl-C out of raw mode).
 */
export async function runBlock(
  program: TransformedBlock,
  context: vm.Context,
  signal: AbortSignal,
  settle: () => Promise<void>,
  whileSynchronous?: <T>(start: () => T) => T,
): Promise<BlockOutcome> {
  try {
    return await runInBlock(program, context, signal, settle, whileSynchronous);
  } finally {
    // While runningBlock is in use, node runs hooks for every promise of the process (the worker's
    // and the REST API's too): it is let go between blocks, unless a block stopped with Ctrl-C may
    // still run. What is left of a block that was not stopped has a signal that never aborts: with
    // no store it acts just the same.
    if (signal.aborted) blockStopped = true;
    else if (!blockStopped) runningBlock.disable();
  }
}

/** Whether a block was stopped with Ctrl-C: what is left of it needs runningBlock from then on. */
let blockStopped = false;

async function runInBlock(
  program: TransformedBlock,
  context: vm.Context,
  signal: AbortSignal,
  settle: () => Promise<void>,
  whileSynchronous?: <T>(start: () => T) => T,
): Promise<BlockOutcome> {
  let running: Promise<{ value?: unknown } | undefined>;
  try {
    const script = new vm.Script(program.code, { filename: blockFilename });
    const start = () => script.runInContext(context, { displayErrors: false, breakOnSigint: whileSynchronous !== undefined });
    running = runningBlock.run(signal, () => (whileSynchronous ? whileSynchronous(start) : start()));
  } catch (error) {
    if ((error as { code?: unknown })?.code === "ERR_SCRIPT_EXECUTION_INTERRUPTED") return { kind: "interrupted" };
    return { kind: "error", error };
  }
  const cancelled = new Promise<"cancelled">((resolve) => {
    if (signal.aborted) resolve("cancelled");
    signal.addEventListener("abort", () => resolve("cancelled"), { once: true });
  });
  try {
    const result = await Promise.race([running, cancelled]);
    if (result === "cancelled") {
      running.catch(() => {}); // whatever it does later is no longer ours to report
      return { kind: "cancelled" };
    }
    await Promise.race([settle(), cancelled]);
    return { kind: "value", value: result?.value };
  } catch (error) {
    if (error instanceof ShellExit) return { kind: "exit", code: error.code };
    if (signal.aborted) return { kind: "cancelled" };
    return { kind: "error", error };
  }
}

/** Where in the block an error happened, from its stack, mapped back through the rewrite. */
export function errorPosition(error: unknown, program: Pick<TransformedBlock, "originalPosition">): { line: number; column: number } | undefined {
  const stack = typeof (error as { stack?: unknown })?.stack === "string" ? (error as { stack: string }).stack : "";
  const match = /<shell>:(\d+)(?::(\d+))?/.exec(stack);
  if (!match) return undefined;
  const line = Number(match[1]);
  if (!match[2]) return { line, column: 0 };
  return program.originalPosition(line, Number(match[2]));
}

/** `Name: message`, then where in the block and that line of it. */
export function formatError(
  error: unknown,
  block: string,
  program: Pick<TransformedBlock, "originalPosition"> | undefined,
  colors: Colors,
  position?: { line: number; column: number },
): string {
  const isError = typeof error === "object" && error !== null && typeof (error as Error).message === "string" && "stack" in error;
  if (!isError) return colors.red(`Uncaught ${inspect(error, { colors: false })}`);
  const e = error as Error;
  const name = e.name || "Error";
  const lines = [colors.red(`${name}: ${e.message}`)];
  const at = position ?? (program ? errorPosition(e, program) : undefined);
  if (at) {
    const text = block.split("\n")[at.line - 1];
    const where = at.column > 0 ? `line ${at.line}, column ${at.column}` : `line ${at.line}`;
    lines.push(colors.red(`    at ${where} of the block${text !== undefined ? `: ${text.trim()}` : ""}`));
  }
  return lines.join("\n");
}
