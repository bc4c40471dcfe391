// code_injection: the text of a direct message is the script. It is cleaned of Slack's formatting,
// checked against a policy (no import in any form, no loops), and run like a job script with the
// job's builtins and a time limit. The policy keeps honest mistakes from hanging the bot; it is not
// a sandbox: the users named in the job's topics are trusted to run code in the worker process.
import type * as acorn from "acorn";
import * as walk from "acorn-walk";
import type { ScriptBuiltins } from "../builtins.js";
import type { RegisteredJob } from "../registry.js";
import { nodePosition, parseBody, parseFailure } from "../syntax.js";
import { runInOwnContext } from "./code-context.js";
import { CodeRefusedError } from "./errors.js";

/** The code inside a message: fenced blocks (or inline backticks) unwrapped, Slack's link markup and escapes undone. */
export function normaliseCode(text: string): string {
  let code = text.trim();
  const fenced = [...code.matchAll(/```(?:[a-zA-Z]+[ \t]*\n)?([\s\S]*?)```/g)];
  if (fenced.length > 0) code = fenced.map((m) => m[1]).join("\n");
  else if (/^`[^`]+`$/.test(code)) code = code.slice(1, -1);
  // Slack turns what looks like a link into markup: `<http://x.io|x.io>` for a typed `x.io`, `<https://x.io>`
  // for a typed URL. A literal `<` always arrives escaped, so every `<...>` here is Slack's markup.
  code = code
    .replace(/<(?:https?|mailto):[^|>]*\|([^>]*)>/g, "$1")
    .replace(/<((?:https?|mailto):[^|>]*)>/g, "$1");
  // Slack escapes exactly these three; `&amp;` last, so that `&amp;lt;` stays the text `&lt;`.
  return code.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&").trim();
}

const refused: Record<string, string> = {
  ImportDeclaration: "`import` declarations are not allowed",
  ImportExpression: "`import()` is not allowed",
  MetaProperty: "`import.meta` is not allowed",
  ForStatement: "`for` loops are not allowed",
  ForInStatement: "`for ... in` loops are not allowed",
  ForOfStatement: "`for ... of` loops are not allowed",
  WhileStatement: "`while` loops are not allowed",
  DoWhileStatement: "`do ... while` loops are not allowed",
};

/** Throw CodeRefusedError naming every refused construct and its line, or the syntax error. */
export function checkCode(code: string): void {
  let program: acorn.Program;
  try {
    program = parseBody(code);
  } catch (err) {
    // Static `import` only parses in a module; report it as refused rather than as a syntax error.
    try {
      program = parseBody(code, { sourceType: "module" });
    } catch {
      const { message, line, column } = parseFailure(err);
      throw new CodeRefusedError([{ line, column, what: `SyntaxError: ${message}` }], true);
    }
  }
  const problems: { line: number; column: number; what: string }[] = [];
  walk.full(program, (node) => {
    const what = refused[node.type];
    if (what && !(node.type === "MetaProperty" && (node as acorn.MetaProperty).meta.name !== "import")) {
      problems.push({ ...nodePosition(node), what });
    }
  });
  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new CodeRefusedError(problems);
  }
}

/** What a refusal looks like in Slack. */
export function refusalText(err: CodeRefusedError): string {
  if (err.syntax) return `${err.problems[0].what} (line ${err.problems[0].line}:${err.problems[0].column})`;
  const lines = err.problems.map((p) => `line ${p.line}: ${p.what}`);
  return `Refused, nothing was run:\n${lines.join("\n")}`;
}

/**
 * The runner of jobs without a script (WorkerOptions.runWithoutScript): the task's `content.text`
 * is the code, run in a context of its own that the time limit of `seconds` can interrupt.
 */
export function injectionRunner(seconds: number): (job: RegisteredJob, builtins: ScriptBuiltins) => Promise<unknown> {
  return async (job, builtins) => {
    const text = (builtins.task as { content?: { text?: unknown } }).content?.text;
    if (!job.definition.slack?.code_injection) throw new Error(`job ${job.definition.name} has no script`);
    if (typeof text !== "string") throw new TypeError("the task has no text to run");
    const code = normaliseCode(text);
    checkCode(code);
    return runInOwnContext(job.definition.name, code, builtins, seconds);
  };
}
