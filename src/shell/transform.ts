// The rewrite that turns one shell block into a program the shell can run:
//
// - top-level `await` everywhere: the block becomes the body of an async arrow;
// - names declared at the top of the block (`const`, `let`, `var`, `function`, `class`, also inside
//   destructuring) become globals of the shell, so later blocks see them and may declare them again;
// - the value of the last expression statement is returned as `{ value }` (an object, so that a
//   promise value is shown as a promise rather than awaited);
// - Python-style keyword arguments in calls to the shell's builtins: `task("t", expire=30)` becomes
//   `task("t", __keywords__({expire: 30}))`, and the builtin sorts them out (see keywords.ts).
//
// The source keeps its lines: the wrapper sits on the first line, so line N of the program is line N
// of the block; `originalPosition` maps columns back through the insertions.
import type * as acorn from "acorn";
import * as walk from "acorn-walk";
import { declaredIdentifiers, nodePosition, parseBody, parseFailure } from "../syntax.js";

export interface TransformOptions {
  /** callees (`task`, `json.dumps`) whose `name=value` arguments are keyword arguments */
  keywordCallees: ReadonlySet<string>;
  /** the global function that tags keyword arguments */
  keywordsFunction: string;
}

export interface TransformedBlock {
  /** a script whose completion value is a promise of `{ value }` */
  code: string;
  /** names the block declares at its top level (they become globals of the shell) */
  declared: string[];
  /** the line and column (from 1) in the block of a line and column in `code` */
  originalPosition(line: number, column: number): { line: number; column: number };
}

/** The block is not valid JavaScript, or is incomplete (more lines may make it valid). */
export class BlockSyntaxError extends SyntaxError {
  readonly code = "BLOCK_SYNTAX";
  constructor(
    message: string,
    /** from 1, inside the block */
    readonly line: number,
    /** from 1 */
    readonly column: number,
    /** the input ended before the code did: an open brace, call, template or comment */
    readonly incomplete: boolean,
  ) {
    super(message);
    this.name = "SyntaxError";
  }
}

const pythonComment = /^([ \t]*)#([ \t]|$)/gm;

/**
 * Python comment lines (`# ...`) read as `//...` (or a blank line): the source's tutorials are full
 * of them. The text keeps its length, so positions in it are positions in the block. `only` limits
 * the change to the lines whose `#` is at those offsets.
 */
export function pythonComments(source: string, only?: ReadonlySet<number>): string {
  return source.replace(pythonComment, (match: string, indent: string, after: string, offset: number) => {
    if (only && !only.has(offset + indent.length)) return match;
    return after ? `${indent}//` : `${indent} `;
  });
}

/** Offsets of the `#` of every line that looks like a Python comment. */
function pythonCommentOffsets(source: string): number[] {
  return [...source.matchAll(pythonComment)].map((m) => m.index! + m[1].length);
}

export function transformBlock(block: string, options: TransformOptions): TransformedBlock {
  const candidates = pythonCommentOffsets(block);
  let { source, program, wrapped, strings } = parseBlock(pythonComments(block));
  // A `# ...` line inside a template string (a YAML text given to upload()) is text, not a comment.
  const inString = (at: number) => strings.some(([start, end]) => at >= start && at < end);
  const comments = new Set(candidates.filter((at) => !inString(at + (wrapped ? 1 : 0))));
  if (comments.size < candidates.length) ({ source, program, wrapped } = parseBlock(pythonComments(block, comments)));

  const edits = new Edits(source);
  rewriteKeywordCalls(program, edits, options);
  const { hoisted, functions } = rewriteDeclarations(program, edits);
  rewriteCompletion(program, edits);

  const hoist = hoisted.length > 0 ? `var ${hoisted.join(", ")}; ` : "";
  const exportFunctions = functions.map((f) => `this.${f} = ${f}; `).join("");
  const prefix = `${hoist}(async () => { ${exportFunctions}`;
  const body = edits.apply();
  const code = `${prefix}${body}\n})()`;
  const lineStarts = [0];
  for (let i = 0; i < code.length; i++) if (code[i] === "\n") lineStarts.push(i + 1);
  return {
    code,
    declared: [...new Set([...hoisted, ...functions])],
    originalPosition(line, column) {
      const offset = (lineStarts[line - 1] ?? 0) + column - 1 - prefix.length;
      const original = Math.max(0, edits.originalOffset(Math.max(0, offset)) - (wrapped ? 1 : 0));
      const before = block.slice(0, original);
      const row = before.split("\n").length;
      return { line: row, column: original - (before.lastIndexOf("\n") + 1) + 1 };
    },
  };
}

interface ParsedBlock {
  source: string;
  program: acorn.Program;
  /** the block was put in parentheses */
  wrapped: boolean;
  /** [start, end) of every string and template text */
  strings: [number, number][];
}

function parseBlock(text: string): ParsedBlock {
  const strings: [number, number][] = [];
  const onToken = (token: acorn.Token) => {
    if (token.type.label === "string" || token.type.label === "template") strings.push([token.start, token.end]);
  };
  // `{"topic": "x"}` typed alone is an object, not a block statement.
  if (/^\s*\{/.test(text) && /\}\s*;?\s*$/.test(text)) {
    const source = `(${text.replace(/;\s*$/, "")})`;
    try {
      return { source, program: parseBody(source, { onToken }), wrapped: true, strings };
    } catch {
      strings.length = 0;
    }
  }
  try {
    return { source: text, program: parseBody(text, { onToken }), wrapped: false, strings };
  } catch (err) {
    throw toBlockSyntaxError(err, text);
  }
}

function toBlockSyntaxError(err: unknown, source: string): BlockSyntaxError | unknown {
  const { message, line, column, offset } = parseFailure(err);
  if (offset === undefined) return err;
  const atEnd = offset >= source.trimEnd().length;
  const incomplete =
    /^Unterminated (template|comment)/.test(message) ||
    (/^Unterminated string/.test(message) && /\\\r?\n?$/.test(source.trimEnd() + "\n")) ||
    (atEnd && !/^Unterminated (string|regular)/.test(message));
  return new BlockSyntaxError(message, line, column, incomplete);
}

function syntaxErrorAt(node: acorn.Node, message: string): BlockSyntaxError {
  const { line, column } = nodePosition(node);
  return new BlockSyntaxError(message, line, column, false);
}

// ------------------------------------------------------------------------------------------
// Keyword arguments

function calleeName(callee: acorn.Node): string | undefined {
  if (callee.type === "Identifier") return (callee as acorn.Identifier).name;
  if (callee.type === "MemberExpression") {
    const m = callee as acorn.MemberExpression;
    if (!m.computed && m.object.type === "Identifier" && m.property.type === "Identifier") {
      return `${m.object.name}.${m.property.name}`;
    }
  }
  return undefined;
}

function isKeywordArgument(arg: acorn.Node): arg is acorn.AssignmentExpression & { left: acorn.Identifier } {
  const a = arg as acorn.AssignmentExpression;
  return a.type === "AssignmentExpression" && a.operator === "=" && a.left.type === "Identifier";
}

function rewriteKeywordCalls(program: acorn.Program, edits: Edits, options: TransformOptions): void {
  walk.full(program, (node) => {
    if (node.type !== "CallExpression") return;
    const call = node as acorn.CallExpression;
    const name = calleeName(call.callee);
    if (name === undefined || !options.keywordCallees.has(name)) return;
    const first = call.arguments.findIndex(isKeywordArgument);
    if (first < 0) return;
    const keywords = call.arguments.slice(first);
    const seen = new Set<string>();
    for (const arg of keywords) {
      if (!isKeywordArgument(arg)) throw syntaxErrorAt(arg, `${name}(): positional argument follows keyword argument`);
      if (seen.has(arg.left.name)) throw syntaxErrorAt(arg, `${name}(): keyword argument repeated: ${arg.left.name}`);
      seen.add(arg.left.name);
    }
    edits.insert(keywords[0].start, `${options.keywordsFunction}({`);
    for (const arg of keywords as (acorn.AssignmentExpression & { left: acorn.Identifier })[]) {
      edits.replace(arg.left.end, arg.right.start, ": ");
    }
    edits.insert(keywords[keywords.length - 1].end, "})");
  });
}

// ------------------------------------------------------------------------------------------
// Declarations

function declaredNames(declaration: acorn.VariableDeclaration): string[] {
  return declaration.declarations.flatMap((d) => declaredIdentifiers(d.id)).map((id) => id.name);
}

/**
 * Top-level declarations become assignments to globals: `const {a, b} = x, c = 1;` →
 * `void (({a, b} = x), (c = 1));` with `var a, b, c;` hoisted in front of the program. `var` is
 * rewritten at any depth outside functions, since it would otherwise belong to the async arrow.
 * A top-level `class C` becomes `C = class C ...;`; a top-level `function f` stays where it is
 * (so it is hoisted within the block) and is copied to the global `f` when the block starts.
 */
function rewriteDeclarations(program: acorn.Program, edits: Edits): { hoisted: string[]; functions: string[] } {
  const hoisted: string[] = [];
  const functions: string[] = [];
  const topLevel = new Set<acorn.Node>(program.body);

  const declaration = (node: acorn.VariableDeclaration, inStatement: boolean) => {
    hoisted.push(...declaredNames(node));
    edits.replace(node.start, node.start + node.kind.length, inStatement ? "void (" : "");
    for (const d of node.declarations) {
      if (inStatement) edits.insert(d.id.start, "(");
      if (!d.init && node.kind !== "var") edits.insert(d.id.end, " = undefined");
      if (inStatement) edits.insert(d.end, ")");
    }
    if (inStatement) {
      if (edits.source[node.end - 1] === ";") edits.insert(node.end - 1, ")");
      else edits.insert(node.end, ");");
    }
  };

  // Names bound in a for head (`for (const x of xs)`) belong to the loop; only `var` moves out.
  const forHead = (head: acorn.Node | null | undefined) => {
    if (!head || head.type !== "VariableDeclaration") return;
    const decl = head as acorn.VariableDeclaration;
    if (decl.kind !== "var") return;
    hoisted.push(...declaredNames(decl));
    // `for (var i = 0, j = 1; ...)` → `for (i = 0, j = 1; ...)`; `for (var {a} of xs)` → `for ({a} of xs)`.
    edits.replace(decl.start, decl.declarations[0].start, "");
  };

  walk.recursive(program, undefined, {
    Function() {
      // A function has its own scope: its declarations and awaits are its own.
    },
    Class(node, _state, c) {
      const cls = node as acorn.Class;
      if (cls.type === "ClassDeclaration" && topLevel.has(cls) && cls.id) {
        hoisted.push(cls.id.name);
        edits.insert(cls.start, `${cls.id.name} = `);
        edits.insert(cls.end, ";");
      }
      if (cls.superClass) c(cls.superClass, undefined);
    },
    VariableDeclaration(node, _state, c) {
      const decl = node as acorn.VariableDeclaration;
      if (topLevel.has(decl) || decl.kind === "var") declaration(decl, true);
      for (const d of decl.declarations) if (d.init) c(d.init, undefined);
    },
    ForStatement(node, _state, c) {
      const f = node as acorn.ForStatement;
      if (f.init?.type === "VariableDeclaration" && f.init.kind === "var") {
        forHead(f.init);
        for (const d of f.init.declarations) if (d.init) c(d.init, undefined);
      } else if (f.init) c(f.init, undefined);
      if (f.test) c(f.test, undefined);
      if (f.update) c(f.update, undefined);
      c(f.body, undefined);
    },
    ForInStatement(node, _state, c) {
      forInOf(node as acorn.ForInStatement, c);
    },
    ForOfStatement(node, _state, c) {
      forInOf(node as acorn.ForOfStatement, c);
    },
  });

  function forInOf(f: acorn.ForInStatement | acorn.ForOfStatement, c: walk.WalkerCallback<undefined>) {
    if (f.left.type === "VariableDeclaration" && f.left.kind === "var") forHead(f.left);
    else if (f.left.type !== "VariableDeclaration") c(f.left, undefined);
    c(f.right, undefined);
    c(f.body, undefined);
  }

  for (const statement of program.body) {
    if (statement.type === "FunctionDeclaration" && statement.id) functions.push(statement.id.name);
  }
  return { hoisted: [...new Set(hoisted)], functions };
}

// ------------------------------------------------------------------------------------------
// Completion value

function rewriteCompletion(program: acorn.Program, edits: Edits): void {
  const last = [...program.body].reverse().find((s) => s.type !== "EmptyStatement");
  if (last?.type === "ExpressionStatement") {
    // The statement's end, not the expression's: `({a: 1})` keeps its parentheses inside.
    const end = edits.source[last.end - 1] === ";" ? last.end - 1 : last.end;
    edits.insert(last.start, "return { value: (");
    edits.insert(end, ") }");
  }
  // A `return` at the top of the block ends it with that value.
  walk.recursive(program, undefined, {
    Function() {},
    ReturnStatement(node) {
      const r = node as acorn.ReturnStatement;
      if (!r.argument) return;
      edits.insert(r.argument.start, "{ value: (");
      edits.insert(r.argument.end, ") }");
    },
  });
}

// ------------------------------------------------------------------------------------------

/** Insertions and replacements at positions of the original text, applied at once. */
class Edits {
  private readonly list: { start: number; end: number; text: string; seq: number }[] = [];
  /** runs of the original text in the applied text */
  private copied: { from: number; to: number; length: number }[] = [];
  constructor(readonly source: string) {}

  insert(at: number, text: string): void {
    this.replace(at, at, text);
  }

  /** Replace [start, end); line breaks inside the replaced text are kept so that lines do not move. */
  replace(start: number, end: number, text: string): void {
    const breaks = this.source.slice(start, end).replace(/[^\n]/g, "");
    this.list.push({ start, end, text: text + breaks, seq: this.list.length });
  }

  apply(): string {
    const sorted = [...this.list].sort((a, b) => a.start - b.start || a.seq - b.seq);
    let out = "";
    let at = 0;
    this.copied = [];
    const copy = (end: number) => {
      this.copied.push({ from: out.length, to: at, length: end - at });
      out += this.source.slice(at, end);
    };
    for (const e of sorted) {
      if (e.start < at) continue; // overlapping edits never happen by construction; keep the first
      copy(e.start);
      out += e.text;
      at = e.end;
    }
    copy(this.source.length);
    return out;
  }

  /** The offset in the original text of an offset in the applied text (inserted text maps to where it was inserted). */
  originalOffset(offset: number): number {
    let best = 0;
    for (const run of this.copied) {
      if (offset < run.from) break;
      best = offset < run.from + run.length ? run.to + (offset - run.from) : run.to + run.length;
    }
    return best;
  }
}
