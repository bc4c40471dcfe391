// The block rules of the shell, apart from any terminal: lines are collected into a
// block; an empty line runs it when it is complete and is kept when it is not; a syntax error is
// reported as soon as the line that causes it is entered; a shell command alone on the first line
// of a block runs at once.
import { BlockSyntaxError, transformBlock, type TransformedBlock, type TransformOptions } from "./transform.js";

export const shellCommandNames = ["debug", "help", "commands", "jobs", "stats", "exit", "quit"] as const;
export type ShellCommandName = (typeof shellCommandNames)[number];

export type BlockEvent =
  /** a line was added: show `... ` */
  | { kind: "more" }
  /** nothing to do (an empty line at `>>> `): show `>>> ` again */
  | { kind: "idle" }
  /** a shell command typed alone on the `>>> ` line */
  | { kind: "command"; name: ShellCommandName; args: number[]; line: string }
  /** a complete block to run */
  | { kind: "run"; source: string; program: TransformedBlock; firstLine: number }
  /**
   * the block is not valid; it was dropped. `rest`: lines entered after the one at fault, taken
   * without a check (see push): they start the next block, as if entered after the error.
   */
  | { kind: "error"; error: BlockSyntaxError; source: string; firstLine: number; rest?: string[] };

const commandPattern = new RegExp(`^\\s*(${shellCommandNames.join("|")})\\s*(?:\\(\\s*(\\d*)\\s*\\))?\\s*;?\\s*$`);

/** `debug()`, `exit(1)`; every command is also taken without parentheses (`help`, `exit`), as the
 *  banner's `Type "help"` promises and as Python's REPL answers a bare `help`. */
export function parseShellCommand(line: string): { name: ShellCommandName; args: number[] } | undefined {
  const m = commandPattern.exec(line);
  if (!m) return undefined;
  const name = m[1] as ShellCommandName;
  if (m[2] && name !== "exit" && name !== "quit") return undefined;
  return { name, args: m[2] ? [Number(m[2])] : [] };
}

function isComment(line: string): boolean {
  return /^\s*(\/\/|#(\s|$))/.test(line);
}

export class BlockReader {
  private lines: string[] = [];
  /** the input line number (from 1) of the block's first line */
  private start = 1;
  private lineNumber = 0;

  constructor(private readonly transformOptions: TransformOptions) {}

  /** Whether a block is being collected (the prompt is `... `). */
  get collecting(): boolean {
    return this.lines.length > 0;
  }

  /**
   * Add a line. `more`: further lines are already waiting (piped input), or may be (a paste into a
   * terminal: see checkAdded). The block is then checked once they have come rather than after each
   * line, which would make a long block quadratic. An error found then is at the same line, and the
   * lines after it go back.
   */
  push(line: string, more = false): BlockEvent {
    this.lineNumber++;
    const empty = line.trim() === "";
    if (!this.collecting) {
      this.start = this.lineNumber;
      if (empty) return { kind: "idle" };
    }
    // Comment lines in front of a command (as in a pasted tutorial) do not make it part of a block.
    if (this.lines.every(isComment)) {
      const command = parseShellCommand(line);
      if (command) {
        this.lines = [];
        return { kind: "command", ...command, line };
      }
    }
    if (!empty) {
      this.lines.push(line);
      if (more) return { kind: "more" };
      const checked = this.check();
      return checked.kind === "error" ? checked : { kind: "more" };
    }
    const checked = this.check();
    if (checked.kind === "more") this.lines.push(line);
    else this.lines = [];
    // Lines after the one at fault go back: this empty line too, after them.
    if (checked.kind === "error" && checked.rest) {
      checked.rest.push(line);
      this.lineNumber--;
    }
    return checked;
  }

  /** Check the block collected so far (lines added with `more` are unchecked until then): an error
   *  (the block is dropped, the lines after the one at fault go back) or `more`. A complete block
   *  waits for its empty line. */
  checkAdded(): BlockEvent {
    if (!this.collecting) return { kind: "more" };
    const checked = this.check();
    return checked.kind === "error" ? checked : { kind: "more" };
  }

  /** The end of the input: the block being collected runs (or fails) as if an empty line came. */
  end(): BlockEvent | undefined {
    if (!this.collecting) return undefined;
    const checked = this.check();
    if (checked.kind !== "more") {
      this.lines = [];
      return checked;
    }
    const source = this.take();
    // At the end of what was entered: after the last character of its last line that is not blank.
    const text = source.trimEnd().split("\n");
    const error = new BlockSyntaxError("Unexpected end of input", text.length, text[text.length - 1].length + 1, false);
    return { kind: "error", error, source, firstLine: this.start };
  }

  /** Forget the block being collected (Ctrl-C). */
  clear(): void {
    this.lines = [];
  }

  private check(): BlockEvent {
    const source = this.lines.join("\n");
    try {
      const program = transformBlock(source, this.transformOptions);
      // Complete: an empty line will run it.
      return { kind: "run", source, program, firstLine: this.start };
    } catch (err) {
      if (!(err instanceof BlockSyntaxError)) throw err;
      if (err.incomplete) return { kind: "more" };
      const rest = this.lines.slice(err.line);
      this.lines = [];
      if (rest.length === 0) return { kind: "error", error: err, source, firstLine: this.start };
      this.lineNumber -= rest.length;
      return { kind: "error", error: err, source: source.split("\n").slice(0, err.line).join("\n"), firstLine: this.start, rest };
    }
  }

  private take(): string {
    const source = this.lines.join("\n");
    this.lines = [];
    return source;
  }
}
