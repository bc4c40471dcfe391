// The shell's history across runs: `~/.jobshell_history`, moved by JOBSHELL_HISTORY, disabled when
// that is empty. One entry a line, oldest first; the file is private to its owner (mode 0600).
// A history that cannot be read or written is a warning, never a reason to stop the shell.
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";

export const historySize = 1000;

/** The history file, or undefined when history is off. */
export function historyPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const given = env.JOBSHELL_HISTORY;
  if (given !== undefined) return given.trim() === "" ? undefined : given;
  return path.join(homedir(), ".jobshell_history");
}

/** Entries newest first, as readline keeps them; [] when there is no file yet. */
export function readHistory(file: string, warn: (message: string) => void): string[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") warn(`cannot read the history file ${file}: ${(err as Error).message}`);
    return [];
  }
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .slice(-historySize)
    .reverse();
}

/** Writes the history a moment after it changes (a paste adds many lines at once), and at the end. */
export class HistoryWriter {
  private pending?: string[];
  private timer?: NodeJS.Timeout;
  private warned = false;

  constructor(
    private readonly file: string,
    private readonly warn: (message: string) => void,
  ) {}

  /** `entries` newest first. */
  update(entries: readonly string[]): void {
    this.pending = [...entries];
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), 50);
    this.timer.unref();
  }

  flush(): void {
    clearTimeout(this.timer);
    const entries = this.pending;
    this.pending = undefined;
    if (!entries) return;
    try {
      const text = entries.slice(0, historySize).reverse().join("\n");
      writeFileSync(this.file, text ? `${text}\n` : "", { mode: 0o600 });
      chmodSync(this.file, 0o600);
    } catch (err) {
      if (this.warned) return;
      this.warned = true;
      this.warn(`cannot write the history file ${this.file}: ${(err as Error).message} (history is not saved)`);
    }
  }
}
