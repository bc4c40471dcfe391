// The interactive `>>>` shell on node:readline, for a terminal and for piped input.
//
// Lines wait in one queue and a block runs only after the previous one has ended (lines typed
// meanwhile wait their turn). On a terminal, readline draws the prompt and the line
// being typed, and ShellOutput prints everything else above them. Piped: the same block rules,
// no prompts, no colours; at the end of the input the shell waits for the tasks it issued, and
// a block that can never finish is reported as such (see noticeStall).
//
// One file on purpose: the line queue, block runs, readline and Ctrl-C all share ShellSession's state.
import { setMaxListeners } from "node:events";
import * as readline from "node:readline";
import type { Readable, Writable } from "node:stream";
import { inspect, stripVTControlCharacters } from "node:util";
import type vm from "node:vm";
import { internals } from "../internals.js";
import type { JobShell } from "../jobshell.js";
import { BlockReader, type BlockEvent } from "./blocks.js";
import { complete } from "./completion.js";
import { banner, connectionLine, exitStatus, ShellCommands } from "./commands.js";
import { BlockCancelled, createShellContext, forgotAwait, keywordsFunction } from "./context.js";
import { errorPosition, formatError, runBlock } from "./evaluate.js";
import { InputGate, type TerminalInput } from "./gate.js";
import { historyPath, historySize, HistoryWriter, readHistory } from "./history.js";
import { makeColors, ShellOutput, showValue, type Colors } from "./output.js";
import { expiresAt } from "../record.js";
import { transactionEventsOff } from "../transaction.js";

export interface ShellOptions {
  /** the history file; "" turns history off; undefined: JOBSHELL_HISTORY, else ~/.jobshell_history */
  history?: string;
  /** colours wanted (the shell also turns them off for NO_COLOR and for output that is not a terminal) */
  color: boolean;
  /** whether this process runs a worker (the banner says so; it reads it from `js` itself) */
  worker: boolean;
  /** a line under the banner on where this process serves the REST API and console (or why not) */
  serving?: string;
  input?: Readable;
  output?: Writable;
}

/** A block running longer than this shows a progress line on a terminal. */
const progressAfterMs = 1000;
const primaryPrompt = ">>> ";
const continuationPrompt = "... ";

/** Run the shell until exit(), Ctrl-D or the end of the input; resolves with the exit code. */
export async function runShell(js: JobShell, options: ShellOptions): Promise<number> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const terminal = (input as { isTTY?: boolean }).isTTY === true && (output as { isTTY?: boolean }).isTTY === true;
  const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== "";
  const colors = makeColors(options.color && terminal && !noColor);
  const session = new ShellSession(js, { input, output, terminal, colors, history: options.history, serving: options.serving });
  return session.run();
}

interface SessionOptions {
  input: Readable;
  output: Writable;
  terminal: boolean;
  colors: Colors;
  history?: string;
  serving?: string;
}

class ShellSession {
  private readonly out: ShellOutput;
  private readonly colors: Colors;
  private readonly commands: ShellCommands;
  private readonly reader: BlockReader;
  private readonly readerOptions: ConstructorParameters<typeof BlockReader>[0];
  private readonly context: vm.Context;
  /** lines entered and not handled yet (typed while a block runs, or read ahead from a pipe) */
  private readonly pending: string[] = [];
  /** a block or a command is running */
  private busy = false;
  /** on a terminal: lines were added to the block unchecked, and a check is due (see pump) */
  private checkDue = false;
  private inputEnded = false;
  private finished?: () => void;
  private releaseStderr?: () => void;
  private releaseConsole?: () => void;
  private rl?: readline.Interface;
  /** on a terminal: holds what is typed while a block runs */
  private gate?: InputGate;
  private history?: HistoryWriter;
  /** the running block's controller: Ctrl-C aborts it */
  private running?: AbortController;
  /** the running block (or command) as the user wrote it: its first line, and where it is in the input */
  private runningText?: { line: string; at?: number };
  /** ends the wait of run() for a block that can never finish */
  private stalled?: () => void;
  private tracked: Promise<unknown>[] = [];
  private failed = false;
  private exitCode?: number;
  /** what the running block waits for, for the progress line */
  private readonly progress = { waiting: 0 };
  /** what the shell last put in `_`; `owned` once a block assigned `_` itself */
  private lastValue: { value?: unknown; owned: boolean } = { owned: false };

  constructor(
    private readonly js: JobShell,
    private readonly options: SessionOptions,
  ) {
    this.out = new ShellOutput(options.output);
    this.colors = options.colors;
    this.commands = new ShellCommands({ js, out: this.out, colors: this.colors });
    const { context, keywordCallees } = createShellContext({
      js,
      out: this.out,
      commands: this.commands,
      colors: this.colors,
      track: (done) => this.track(done),
      progress: options.terminal ? this.progress : undefined,
    });
    this.context = context;
    this.readerOptions = { keywordCallees, keywordsFunction };
    this.reader = new BlockReader(this.readerOptions);
  }

  async run(): Promise<number> {
    const { terminal } = this.options;
    const onRejection = (reason: unknown) => this.report(reason, "Uncaught (in promise)");
    const onException = (error: unknown) => this.report(error, "Uncaught");
    const onBeforeExit = () => this.noticeStall();
    process.on("unhandledRejection", onRejection);
    process.on("uncaughtException", onException);
    // Only piped input can let the event loop empty: a terminal is always there to read.
    if (!terminal) process.on("beforeExit", onBeforeExit);
    // Said once per outage, above the prompt: the connections reconnect by themselves meanwhile.
    const stopHearing = internals(this.js).onConnection((change) => this.out.line(this.colors.yellow(connectionLine(change, this.js.mode))));
    try {
      const finished = new Promise<void>((resolve) => (this.finished = resolve));
      const stalled = new Promise<void>((resolve) => (this.stalled = resolve));
      // Piped input ends by waiting for the tasks it issued.
      if (!terminal) internals(this.js).trackIssued();
      this.open();
      if (terminal) this.out.line(banner(this.js, this.colors));
      if (terminal && this.options.serving) this.out.line(this.colors.dim(this.options.serving));
      const notice = transactionEventsOff(this.js.jobs(), internals(this.js).params.jobTransactionEvent);
      if (terminal && notice) this.warn(notice);
      this.prompt();
      await Promise.race([finished, stalled]);
      if (!terminal && this.exitCode === undefined) {
        const last = this.reader.end();
        if (last) await Promise.race([this.handle(last), stalled]);
        if (this.exitCode === undefined) await this.waitForIssued();
      }
    } finally {
      stopHearing();
      this.history?.flush();
      this.out.flush();
      if (terminal && this.exitCode === undefined && this.out.writable) this.options.output.write("\n");
      this.out.detach();
      this.releaseStderr?.();
      this.releaseConsole?.();
      this.rl?.close();
      this.gate?.detach();
      if (terminal && this.out.writable) {
        const held = await this.js.stats().then((s) => s.inFlight, () => 0);
        if (held > 0) this.out.line(this.colors.dim(`Letting the worker finish the ${held} task${held === 1 ? "" : "s"} it holds (Ctrl-C stops now)...`));
      }
      // Closing lets the worker finish what it holds; with debug() on, its lines are still shown.
      // close() also ends the debug subscription.
      await this.js.close().catch((err) => this.out.line(this.colors.red(`closing: ${(err as Error).message}`)));
      // Node reports a rejection nobody handled once the current turn ends: let it be ours to report.
      await new Promise((resolve) => setImmediate(resolve));
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtException", onException);
      process.off("beforeExit", onBeforeExit);
    }
    return this.exitCode ?? (this.failed && !terminal ? 1 : 0);
  }

  /**
   * Handle the lines waiting, one block at a time. Lines that only add to the block are handled at
   * once, inside readline's own line event, so that the `... ` prompt is drawn before readline echoes
   * the next line of a paste.
   */
  private pump(): void {
    while (!this.busy && this.exitCode === undefined) {
      const line = this.pending.shift();
      if (line === undefined) break;
      // Piped lines are checked once those read ahead are in. On a terminal readline gives the lines
      // of a paste one by one; they are checked once it has given all it read in one go, which for
      // a typed line is at once. Checked at each line, a long paste would be parsed once per line.
      const event = this.reader.push(line, this.options.terminal || this.pending.length > 0);
      if (event.kind === "more" && this.options.terminal) this.checkSoon();
      if (event.kind === "error" && event.rest) this.pending.unshift(...event.rest);
      if (event.kind === "run" || event.kind === "command") {
        this.busy = true;
        this.gate?.shut();
        void this.handle(event).then(() => {
          this.busy = false;
          if (this.pending.length === 0) this.prompt();
          this.gate?.release();
          this.pump();
        });
        return;
      }
      void this.handle(event);
      if (this.pending.length === 0) this.prompt();
    }
    if (!this.busy && (this.exitCode !== undefined || (this.inputEnded && this.pending.length === 0))) this.finished?.();
  }

  private checkSoon(): void {
    if (this.checkDue) return;
    this.checkDue = true;
    setImmediate(() => {
      this.checkDue = false;
      if (this.busy || this.exitCode !== undefined) return;
      const event = this.reader.checkAdded();
      if (event.kind !== "error") return;
      if (event.rest) this.pending.unshift(...event.rest);
      void this.handle(event);
      // The lines after the one at fault start the next block; pump() shows its prompt.
      if (this.pending.length === 0) this.prompt();
      else this.pump();
    });
  }

  private open(): void {
    const { input, output, terminal } = this.options;
    // A closed output (`jobshell < file | head`) ends the shell: nobody reads what it would print.
    output.on("error", () => {
      this.exitCode ??= 1;
      this.pending.length = 0;
      this.running?.abort(new BlockCancelled());
      this.pump();
    });
    let history: string[] = [];
    if (terminal) {
      const file = this.options.history === undefined ? historyPath() : this.options.history.trim() || undefined;
      if (file) {
        history = readHistory(file, (m) => this.warn(m));
        this.history = new HistoryWriter(file, (m) => this.warn(m));
      }
    }
    if (terminal) this.gate = new InputGate(input as TerminalInput, () => this.interrupt());
    const rl = readline.createInterface({
      input: (this.gate as unknown as NodeJS.ReadableStream | undefined) ?? input,
      output: terminal ? output : undefined,
      terminal,
      history,
      historySize,
      prompt: primaryPrompt,
      // A file written on Windows: "\r\n" is one line break, however the chunks fall.
      crlfDelay: Infinity,
      completer: terminal ? (line: string) => complete(line, this.context, () => this.js.jobs()) : undefined,
    });
    this.rl = rl;
    if (terminal) {
      this.out.attach(rl);
      // Log lines written to the same terminal must not break the line being typed either.
      if (process.stderr.isTTY && output !== process.stderr) this.releaseStderr = this.out.capture(process.stderr);
      // And so must console.log in a job script.
      if (output === process.stdout) this.releaseConsole = this.out.captureConsole();
    }
    rl.on("line", (line) => {
      this.pending.push(line);
      // Piped: readline gives a whole chunk's lines in one go; take them together (see BlockReader.push).
      if (terminal) this.pump();
      else if (this.pending.length === 1) queueMicrotask(() => this.pump());
    });
    rl.on("close", () => {
      // Ctrl-D: stop waiting for the running block. (Piped input ends long before its blocks have run.)
      if (terminal) {
        this.running?.abort(new BlockCancelled());
        this.out.detach();
      }
      this.inputEnded = true;
      this.pump();
    });
    rl.on("history", (entries: string[]) => this.history?.update(entries));
    if (terminal) rl.on("SIGINT", () => this.interrupt());
  }

  private prompt(): void {
    if (!this.options.terminal || !this.rl || this.exitCode !== undefined || this.inputEnded) return;
    this.rl.setPrompt(this.reader.collecting ? continuationPrompt : primaryPrompt);
    this.rl.prompt(true);
  }

  private async handle(event: BlockEvent): Promise<void> {
    switch (event.kind) {
      case "more":
      case "idle":
        return;
      case "command":
        return this.command(event.name, event.args);
      case "error":
        this.failed = true;
        this.showError(event.error, event, event.error);
        this.markNextBlock(event);
        if (this.options.terminal) this.out.line("");
        return;
      case "run":
        return this.runBlock(event);
    }
  }

  private async command(name: string, args: number[]): Promise<void> {
    if (name === "exit" || name === "quit") {
      try {
        this.exitCode = exitStatus(args[0]);
      } catch (err) {
        this.failed = true;
        this.out.line(formatError(err, "", undefined, this.colors));
      }
      return;
    }
    // Ctrl-C stops waiting for a command too (a subscription to a server that does not answer).
    const controller = new AbortController();
    this.running = controller;
    this.runningText = { line: `${name}()` };
    const cancelled = new Promise<"cancelled">((resolve) => controller.signal.addEventListener("abort", () => resolve("cancelled")));
    const run = async () => {
      if (name === "debug") await this.commands.debug();
      else if (name === "stats") this.out.line(showValue(await this.commands.stats(), this.colors));
      else if (name === "help") this.commands.help();
      else if (name === "commands") this.commands.commands();
      else if (name === "jobs") this.commands.jobs();
    };
    try {
      const done = run();
      if ((await Promise.race([done, cancelled])) === "cancelled") {
        done.catch(() => {});
        this.out.line(this.colors.yellow(`KeyboardInterrupt: stopped waiting for ${name}()`));
      }
    } catch (err) {
      this.failed = true;
      this.out.line(formatError(err, "", undefined, this.colors));
    } finally {
      this.running = undefined;
      this.runningText = undefined;
    }
  }

  private async runBlock(event: Extract<BlockEvent, { kind: "run" }>): Promise<void> {
    const controller = new AbortController();
    // Every waitfor() of the block listens on it: thousands at once are expected, not a leak.
    setMaxListeners(0, controller.signal);
    this.running = controller;
    const first = event.source.split("\n")[0].trim();
    this.runningText = { line: first.length > 100 ? `${first.slice(0, 97)}...` : first, at: event.firstLine };
    this.rl?.setPrompt("");
    const settle = async () => {
      while (this.tracked.length > 0) await Promise.all(this.tracked.splice(0));
    };
    const stopProgress = this.gate && this.showProgress(this.gate);
    const outcome = await runBlock(event.program, this.context, controller.signal, settle, this.gate && this.interruptible);
    stopProgress?.();
    this.running = undefined;
    this.runningText = undefined;
    this.tracked = [];
    this.out.flush();
    switch (outcome.kind) {
      case "value":
        if (outcome.value !== undefined) this.out.line(showValue(outcome.value, this.colors, event.program));
        if (outcome.value !== undefined) this.keepLast(outcome.value);
        if (forgotAwait(outcome.value)) this.out.line(this.colors.yellow(forgotAwait(outcome.value)!));
        break;
      case "error":
        this.failed = true;
        this.showError(outcome.error, event, errorPosition(outcome.error, event.program));
        break;
      case "cancelled":
        this.out.line(this.colors.yellow("KeyboardInterrupt: stopped waiting for the block (tasks it issued go on)"));
        break;
      case "interrupted":
        this.out.line(this.colors.yellow("KeyboardInterrupt: the block was stopped"));
        break;
      case "exit":
        this.exitCode = outcome.code;
        return;
    }
    if (this.options.terminal) this.out.line("");
  }

  /**
   * On a terminal, in place of the prompt while a block runs: after a second, for how long and how
   * many waitfor() it is in; at once, what is typed meanwhile (readline gets it once the block ends).
   * Returns the function that takes the line away.
   */
  private showProgress(gate: InputGate): () => void {
    const rl = this.rl!;
    const started = Date.now();
    let shown = false;
    const draw = () => {
      const elapsed = Date.now() - started;
      const typed = stripVTControlCharacters(gate.typedAhead).replace(/\r\n?|\n/g, "⏎").replace(/[\x00-\x1f\x7f]/g, "");
      if (elapsed < progressAfterMs && !typed) return;
      const parts: string[] = [];
      if (elapsed >= progressAfterMs) {
        const waits = this.progress.waiting;
        const waiting = waits > 0 ? `, waiting for ${waits} task${waits === 1 ? "" : "s"}` : "";
        parts.push(this.colors.dim(`(running ${Math.floor(elapsed / 1000)} s${waiting}; Ctrl-C stops waiting)`));
      }
      if (typed) parts.push(typed.length > 40 ? `…${typed.slice(-40)}` : typed);
      rl.setPrompt(parts.join(" "));
      rl.prompt(true);
      shown = true;
    };
    const timer = setInterval(draw, progressAfterMs);
    gate.on("held", draw);
    return () => {
      clearInterval(timer);
      gate.off("held", draw);
      rl.setPrompt("");
      if (shown) rl.prompt(true);
    };
  }

  /** After a syntax error in a paste: where the next block begins, so that its output is not read as
   *  the same block's. */
  private markNextBlock(event: Extract<BlockEvent, { kind: "error" }>): void {
    const skipped = event.rest?.findIndex((line) => line.trim() !== "") ?? -1;
    if (skipped < 0) return;
    const where = this.options.terminal ? "" : `, at line ${event.firstLine + event.source.split("\n").length + skipped} of the input`;
    this.out.line(this.colors.dim(`    the lines after it start a new block${where}: ${event.rest![skipped].trim()}`));
  }

  /** `_` holds the last value shown, as in Node's and Python's REPLs, until a block assigns it itself. */
  private keepLast(value: unknown): void {
    const context = this.context as { _?: unknown };
    if (this.lastValue.owned) return;
    if (context._ !== this.lastValue.value) {
      this.lastValue.owned = true;
      this.out.line(this.colors.dim("Expression assignment to _ now disabled."));
      return;
    }
    context._ = this.lastValue.value = value;
  }

  /** The error with its place in the block; from a pipe, also its line in the input. */
  private showError(error: unknown, block: { source: string; firstLine: number }, at?: { line: number; column: number }): void {
    this.out.line(formatError(error, block.source, undefined, this.colors, at));
    if (at && !this.options.terminal) this.out.line(this.colors.red(`    (line ${block.firstLine + at.line - 1} of the input)`));
  }

  /** The block's synchronous start runs with the terminal out of raw mode, as Node's own REPL does:
   *  Ctrl-C is then a signal, which stops a loop no key could (no key is read while it runs). Keys
   *  typed meanwhile are echoed by the terminal itself. A signal just outside the start, before raw
   *  mode is back, is taken as the Ctrl-C it was rather than ending the process. */
  private readonly interruptible = <T>(start: () => T): T => {
    const onSigint = () => this.interrupt();
    process.on("SIGINT", onSigint);
    this.gate!.setRawMode(false);
    try {
      return start();
    } finally {
      this.gate!.setRawMode(true);
      // After a turn of the event loop: a signal that came meanwhile is delivered to it then.
      setImmediate(() => process.off("SIGINT", onSigint));
    }
  };

  /** Ctrl-C: stop waiting for the running block, or drop the block being typed. */
  private interrupt(): void {
    const rl = this.rl as (readline.Interface & { line: string; cursor: number; prevRows?: number }) | undefined;
    if (!rl) return;
    if (this.busy) {
      // A command (debug(), stats()) finishes on its own; a block stops being waited for.
      this.pending.length = 0;
      this.running?.abort(new BlockCancelled());
      return;
    }
    const typed = rl.line.length > 0 || this.reader.collecting;
    rl.write(null, { ctrl: true, name: "e" });
    this.options.output.write("^C\n");
    rl.line = "";
    rl.cursor = 0;
    rl.prevRows = 0;
    this.reader.clear();
    if (!typed) this.out.line(this.colors.dim("(To exit, press Ctrl-D or type exit())"));
    this.prompt();
  }

  /**
   * Node's own test for a top-level await that can never settle: the event loop is about to empty
   * (the `beforeExit` event) while a block still waits. No timer, socket or subscription is left that
   * could settle what it awaits, so it never will; the shell says so and exits 1, with the number of
   * blocks of the input it did not run. Tasks the worker still runs are the exception: its watchdog
   * (which does not keep the process alive) may yet end them, so the shell looks again a little later.
   */
  private noticeStall(): void {
    const block = this.runningText;
    if (!block || this.exitCode !== undefined) return;
    void this.js.stats().then(
      ({ inFlight }) => {
        if (inFlight > 0) return void setTimeout(() => {}, 100);
        if (this.runningText !== block || this.exitCode !== undefined) return;
        const notRun = this.countBlocks(this.pending.splice(0));
        const where = block.at === undefined ? "" : ` (line ${block.at} of the input)`;
        const rest = notRun === 0 ? "" : `; ${notRun === 1 ? "the block" : `the ${notRun} blocks`} after it did not run`;
        this.out.line(this.colors.red(`Error: this block can never finish, nothing is left that could settle what it awaits: ${block.line}${where}${rest}`));
        this.exitCode = 1;
        this.stalled?.();
      },
      () => {},
    );
  }

  /** How many blocks these lines hold, read as the shell reads them (one with a syntax error counts too). */
  private countBlocks(lines: string[]): number {
    const reader = new BlockReader(this.readerOptions);
    let blocks = 0;
    while (lines.length > 0) {
      const event = reader.push(lines.shift()!, lines.length > 0);
      if (event.kind === "error" && event.rest) lines.unshift(...event.rest);
      if (event.kind === "run" || event.kind === "command" || event.kind === "error") blocks++;
    }
    return reader.end() ? blocks + 1 : blocks;
  }

  private track(done: Promise<unknown>): void {
    if (this.running) this.tracked.push(done);
    else done.catch((err) => this.report(err, "Uncaught"));
  }

  /** At the end of piped input: wait for the tasks issued to end, bounded by their expire, so that their debug output is shown. */
  private async waitForIssued(): Promise<void> {
    const { js } = this;
    const waited = new Set<string>();
    const wait = async (taskid: string, deadline: number) => {
      const untilExpired = Math.max(0, deadline - Date.now()) / 1000 + 1;
      try {
        await js.waitfor(taskid, { timeout: untilExpired });
      } catch (err) {
        // A task a job has started is never cut off by expire: let it finish.
        if ((err as { lastStatus?: string }).lastStatus === "started") {
          await js.waitfor(taskid, { timeout: internals(js).params.jobScriptTimeout }).catch(() => {});
        }
      }
    };
    // Jobs may issue tasks of their own while we wait (chains): wait for those too.
    for (;;) {
      await internals(js).issuing();
      const next = [...internals(js).issued!].filter(([taskid]) => !waited.has(taskid));
      if (next.length === 0) break;
      for (const [taskid] of next) waited.add(taskid);
      await Promise.all(next.map(([taskid, task]) => wait(taskid, expiresAt(task))));
    }
    // Lines published just before a task ended may still be on their way from the server.
    if (this.commands.debugOn) await new Promise((resolve) => setTimeout(resolve, js.mode === "memory" ? 20 : 300));
  }

  private report(error: unknown, what: string): void {
    // What is left of a block interrupted with Ctrl-C was ended on purpose (see runningBlock).
    if (error instanceof BlockCancelled) return;
    this.failed = true;
    const text = formatError(error, "", undefined, this.colors);
    this.out.line(this.colors.red(`${what}: `) + text);
  }

  private warn(message: string): void {
    this.out.line(this.colors.yellow(`warning: ${message}`));
  }
}
