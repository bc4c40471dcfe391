// A job's script: the body of an async function whose parameters are the builtins. It is checked
// when its definition is read, compiled once, and its errors are reported with the script's own
// line:col, never the wrapper's.
import vm from "node:vm";
import type * as acorn from "acorn";
import type { MU } from "./mu.js";
import { sharedBuiltinNames, type Logger, type SharedBuiltins } from "./builtins.js";
import { declaredIdentifiers, parseBody, parseFailure, nodePosition, type Position } from "./syntax.js";

/** Per-task values are arguments of their own so that running a script allocates nothing else. */
export type CompiledScript = (task: MU, logger: Logger, shared: SharedBuiltins) => Promise<unknown>;

/** The wrapper sits on the script's first line, so script line N is line N of the compiled source. */
export const scriptHeader = `(async function (task, logger, { ${sharedBuiltinNames.join(", ")} }) {`;

/** The names the wrapper gives a script. */
const parameterNames: readonly string[] = ["task", "logger", ...sharedBuiltinNames];

export function compileScript(jobName: string, script: string): CompiledScript {
  const source = `${scriptHeader}${script}\n})`;
  return new vm.Script(source, { filename: scriptFilename(jobName) }).runInThisContext() as CompiledScript;
}

export interface ScriptSyntaxError extends Position {
  message: string;
}

/**
 * Why the script would not compile, with its line and column inside the script; undefined when it
 * would. Beyond syntax, a top-level `let`/`const`/`class` may not take a builtin's name: the builtins
 * are parameters of the wrapper, and the compiler refuses the redeclaration.
 */
export function scriptSyntaxError(script: string): ScriptSyntaxError | undefined {
  let program: acorn.Program;
  try {
    program = parseBody(script);
  } catch (err) {
    const { message, line, column } = parseFailure(err);
    return { message: `syntax error: ${message}`, line, column };
  }
  for (const statement of program.body) {
    let ids: acorn.Identifier[] = [];
    if (statement.type === "VariableDeclaration" && statement.kind !== "var") {
      for (const d of statement.declarations) declaredIdentifiers(d.id, ids);
    } else if (statement.type === "ClassDeclaration" && statement.id) {
      ids = [statement.id];
    }
    const clash = ids.find((id) => parameterNames.includes(id.name));
    if (clash) {
      const kind = statement.type === "ClassDeclaration" ? "class" : (statement as acorn.VariableDeclaration).kind;
      return { message: `syntax error: '${clash.name}' is a builtin and cannot be declared again with ${kind}`, ...nodePosition(clash) };
    }
  }
  return undefined;
}

function scriptFilename(jobName: string): string {
  return `job:${jobName}`;
}

/** `message (line L:C)`, with the position inside the script when the stack shows it. */
export function describeScriptError(jobName: string, err: unknown): string {
  const message = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
  const position = err instanceof Error ? scriptPosition(err.stack ?? "", scriptFilename(jobName)) : undefined;
  return position ? `${message} (line ${position.line}:${position.column})` : message;
}

/** The position inside the script of the first frame of `filename` in `stack`, for code run behind `scriptHeader`. */
export function scriptPosition(stack: string, filename: string): Position | undefined {
  const file = filename.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const match = new RegExp(`${file}:(\\d+):(\\d+)`).exec(stack);
  if (!match) return undefined;
  const line = Number(match[1]);
  const column = Number(match[2]) - (line === 1 ? scriptHeader.length : 0);
  return { line, column };
}
