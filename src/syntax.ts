// JavaScript as jobshell reads it. A job script, a shell block and the code of a Slack message are
// each the body of an async function, so acorn parses them as scripts with top-level `await` and
// `return` allowed. Positions are line and column from 1, as every message shows them.
import * as acorn from "acorn";

export interface Position {
  line: number;
  column: number;
}

const bodyOptions: acorn.Options = {
  ecmaVersion: "latest",
  sourceType: "script",
  allowAwaitOutsideFunction: true,
  allowReturnOutsideFunction: true,
  // A `#!` line is a syntax error inside the function the text becomes.
  allowHashBang: false,
  locations: true,
};

/**
 * The syntax tree of `code` read as the body of an async function. `sourceType: "module"` also
 * reads `import` declarations; `onToken` sees every token.
 */
export function parseBody(code: string, options: Pick<acorn.Options, "sourceType" | "onToken"> = {}): acorn.Program {
  return acorn.parse(code, { ...bodyOptions, ...options });
}

export interface ParseFailure extends Position {
  /** acorn's message without the `(line:column)` it appends: the position is given apart */
  message: string;
  /** where in the text acorn stopped; only for acorn's own SyntaxError */
  offset?: number;
}

/** What a failed `parseBody` says and where; any other error reads as at line 1, column 1. */
export function parseFailure(err: unknown): ParseFailure {
  const e = (typeof err === "object" && err !== null ? err : {}) as { pos?: unknown; loc?: { line: number; column: number } };
  const message = err instanceof Error ? err.message.replace(/\s*\(\d+:\d+\)$/, "") : String(err);
  const offset = err instanceof SyntaxError && typeof e.pos === "number" && e.loc !== undefined ? e.pos : undefined;
  return { message, line: e.loc?.line ?? 1, column: (e.loc?.column ?? 0) + 1, offset };
}

/** Where a node of a tree from `parseBody` starts. */
export function nodePosition(node: acorn.Node): Position {
  return { line: node.loc?.start.line ?? 1, column: (node.loc?.start.column ?? 0) + 1 };
}

/** The names a binding declares, at any depth of destructuring: `x`, `{a, b: [c]}`, `...rest`, `d = 1`. */
export function declaredIdentifiers(pattern: acorn.Pattern, out: acorn.Identifier[] = []): acorn.Identifier[] {
  switch (pattern.type) {
    case "Identifier":
      out.push(pattern);
      break;
    case "ObjectPattern":
      for (const p of pattern.properties) declaredIdentifiers(p.type === "RestElement" ? p.argument : p.value, out);
      break;
    case "ArrayPattern":
      for (const p of pattern.elements) if (p) declaredIdentifiers(p, out);
      break;
    case "RestElement":
      declaredIdentifiers(pattern.argument, out);
      break;
    case "AssignmentPattern":
      declaredIdentifiers(pattern.left, out);
      break;
    default:
      break;
  }
  return out;
}
