// Everything the shell prints goes through here, so that output arriving at any time (a job's
// qprint line on the debug channel, a log line) lands above the prompt and never inside the line
// being typed. On a terminal: move to the first row of prompt + input, clear to the end of the
// screen, write the text, then let readline draw the prompt and the typed line again, with the
// cursor where it was. Elsewhere: just write.
import { Console } from "node:console";
import * as readline from "node:readline";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { inspect, stripVTControlCharacters } from "node:util";
import pc from "picocolors";
import type { TransformedBlock } from "./transform.js";

export type Colors = ReturnType<typeof pc.createColors>;

/** Colours on or off (NO_COLOR and non-terminal output turn them off: the caller decides). */
export function makeColors(enabled: boolean): Colors {
  return pc.createColors(enabled);
}

/** The package's folder: frames of its code (dist, src, its dependencies) are the shell's own. */
const packageRoot = new URL("../../", import.meta.url);
const ownFolders = ["dist/", "src/", "node_modules/"].flatMap((folder) => [new URL(folder, packageRoot).href, fileURLToPath(new URL(folder, packageRoot))]);

/** A stack frame of the shell itself or of Node's internals, nothing the user wrote. */
function isShellFrame(line: string): boolean {
  const text = stripVTControlCharacters(line);
  if (!/^\s*at /.test(text)) return false;
  return /[(\s]node:/.test(text) || ownFolders.some((folder) => text.includes(folder));
}

/**
 * Node 20 keeps a promise's async context in enumerable symbols once AsyncLocalStorage is in use
 * (the shell's runningBlock): util.inspect would show them as if they were the value's own. Hidden
 * here on the promises a display reaches (the value, and what it holds two levels down).
 */
const bookkeeping = new Set(["async_id_symbol", "trigger_async_id_symbol", "kResourceStore"]);

function hideBookkeeping(value: unknown, depth = 2, seen = new Set<object>()): void {
  if (typeof value !== "object" || value === null || seen.has(value)) return;
  seen.add(value);
  for (const symbol of Object.getOwnPropertySymbols(value)) {
    if (bookkeeping.has(symbol.description ?? "")) Object.defineProperty(value, symbol, { enumerable: false });
  }
  if (depth === 0) return;
  // Data properties only: a getter is not run for a display (util.inspect does not run it either).
  const described = Object.getOwnPropertyDescriptors(value);
  for (const key of Object.keys(described).slice(0, 100)) hideBookkeeping(described[key].value, depth - 1, seen);
}

/**
 * A value as util.inspect shows it, without the shell's own frames in the errors it holds (a
 * rejected promise). With the block's program, its frames point into the block as typed, and the
 * frame of the wrapper around it goes too.
 */
export function showValue(value: unknown, colors: Colors, program?: Pick<TransformedBlock, "code" | "originalPosition">): string {
  hideBookkeeping(value);
  const text = inspect(value, { colors: colors.isColorSupported });
  if (!text.includes("    at ")) return text;
  const wrapperLine = program ? program.code.split("\n").length : 0;
  const kept: string[] = [];
  const drop = (line: string) => {
    // An error with properties of its own opens their braces at the end of its last frame.
    if (/ \{$/.test(stripVTControlCharacters(line)) && kept.length > 0) kept[kept.length - 1] += " {";
  };
  for (const line of text.split("\n")) {
    if (isShellFrame(line)) {
      drop(line);
      continue;
    }
    if (!program) {
      kept.push(line);
      continue;
    }
    const frame = /<shell>:(\d+):(\d+)/.exec(line);
    if (frame && Number(frame[1]) === wrapperLine) {
      drop(line);
      continue;
    }
    if (!frame) kept.push(line);
    else {
      const at = program.originalPosition(Number(frame[1]), Number(frame[2]));
      kept.push(line.replace(frame[0], `<shell>:${at.line}:${at.column}`));
    }
  }
  return kept.join("\n");
}

/** What readline keeps about the line on screen (`prevRows` is not in the typings). */
type TerminalInterface = readline.Interface & { prevRows?: number; line: string };

export class ShellOutput {
  private rl?: TerminalInterface;
  /** text written without its final line break yet (`print(x, end="")`) */
  private partial = "";

  /** the stream failed (a closed pipe): nothing more is written */
  private broken = false;

  constructor(readonly stream: Writable) {
    stream.on("error", () => (this.broken = true));
  }

  /** Whether the output can still be written. */
  get writable(): boolean {
    return !this.broken;
  }

  /** From now on, redraw this interface's prompt and typed line after printing. */
  attach(rl: readline.Interface): void {
    this.rl = rl as TerminalInterface;
  }

  detach(): void {
    this.rl = undefined;
  }

  /**
   * Route what others write to `stream` (log lines of the in-process worker on stderr) through
   * here, so that it too lands above the prompt. Returns the function that undoes it.
   */
  capture(stream: NodeJS.WriteStream): () => void {
    const original = stream.write;
    stream.write = ((chunk: string | Uint8Array, encoding?: unknown, callback?: unknown) => {
      this.write(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString());
      const done = typeof encoding === "function" ? encoding : callback;
      if (typeof done === "function") process.nextTick(done as () => void);
      return true;
    }) as typeof stream.write;
    return () => {
      stream.write = original;
    };
  }

  /**
   * Route the console of this process (console.log in the job scripts of the in-process worker)
   * through here as well; its errors go to stderr, which `capture` may route. Returns the undo.
   */
  captureConsole(): () => void {
    const original = globalThis.console;
    globalThis.console = new Console({ stdout: this.printer(), stderr: process.stderr });
    return () => {
      globalThis.console = original;
    };
  }

  /** A stream whose writes are printed here (for a Console), those made while `open()` is true. */
  printer(open: () => boolean = () => true): Writable {
    return new Writable({
      write: (chunk, _encoding, done) => {
        if (open()) this.write(String(chunk));
        done();
      },
    });
  }

  /** Print text as whole lines (a final line break is added when missing). */
  line(text: string): void {
    this.print(`${this.takePartial()}${text}\n`);
  }

  /** Print text that may end in the middle of a line; the rest of the line comes with the next write. */
  write(text: string): void {
    const all = this.partial + text;
    const cut = all.lastIndexOf("\n") + 1;
    this.partial = all.slice(cut);
    if (cut > 0) this.print(all.slice(0, cut));
  }

  /** Finish a line left open by `write`. */
  flush(): void {
    if (this.partial) this.print(`${this.takePartial()}\n`);
  }

  private takePartial(): string {
    const p = this.partial;
    this.partial = "";
    return p;
  }

  private print(text: string): void {
    if (this.broken) return;
    const rl = this.rl;
    if (!rl || !rl.terminal) {
      this.stream.write(text);
      return;
    }
    const { rows } = rl.getCursorPos();
    readline.moveCursor(this.stream, 0, -rows);
    readline.cursorTo(this.stream, 0);
    readline.clearScreenDown(this.stream);
    this.stream.write(text);
    // We are at the start of a fresh row: readline must not move up by what it drew before.
    rl.prevRows = 0;
    rl.prompt(true);
  }
}
