// Everything the shell prints goes through here, so that output arriving at any time (a job's
// qprint line on the debug channel, a log line) lands above the prompt and never inside the line
// being typed. On a terminal: move to the first row of prompt + input, clear to the end of the
// screen, write the text, then let readline draw the prompt and the typed line again, with the
// cursor where it was. Elsewhere: just write.
import * as readline from "node:readline";
import type { Writable } from "node:stream";
import pc from "picocolors";

export type Colors = ReturnType<typeof pc.createColors>;

/** Colours on or off (NO_COLOR and non-terminal output turn them off: the caller decides). */
export function makeColors(enabled: boolean): Colors {
  return pc.createColors(enabled);
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
