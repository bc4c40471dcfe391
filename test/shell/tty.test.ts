// The shell in a real pseudo-terminal (tmux), driven key by key as a user does.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cli = path.join(root, "dist", "cli.js");

function hasTmux(): boolean {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const tmuxMissing = !hasTmux();
if (tmuxMissing) {
  if (process.env.CI) throw new Error("tmux is missing: the pseudo-terminal tests of the shell need it (apt-get install -y tmux)");
  console.warn("\n*** SKIPPING the shell's terminal tests: tmux is not installed ***\n");
}

let sessions = 0;

/** One shell in its own tmux server (a unique socket), on a 100x40 terminal. */
class Terminal {
  readonly socket = `jobshell-test-${process.pid}-${++sessions}`;

  constructor(args: string[], env: Record<string, string> = {}) {
    const vars = Object.entries({ JOBSHELL_HISTORY: "", NO_COLOR: "", REDIS_URL: "", AMQP_URL: "", ...env })
      .map(([k, v]) => `${k}=${quote(v)}`)
      .join(" ");
    const command = `cd ${quote(root)} && env ${vars} ${quote(process.execPath)} ${quote(cli)} ${args.map(quote).join(" ")}; echo "[exit $?]"; sleep 600`;
    this.tmux("-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "40", "-s", "shell", command);
  }

  tmux(...args: string[]): string {
    return execFileSync("tmux", ["-L", this.socket, ...args], { encoding: "utf8" });
  }

  /** Type text literally (no key names), without Enter. */
  type(text: string): void {
    this.tmux("send-keys", "-t", "shell", "-l", text);
  }

  /** Press keys: "Enter", "C-c", "C-d", "Up". */
  press(...keys: string[]): void {
    this.tmux("send-keys", "-t", "shell", ...keys);
  }

  /** Paste text as a terminal does (all at once). */
  paste(text: string): void {
    execFileSync("tmux", ["-L", this.socket, "load-buffer", "-"], { input: text });
    this.tmux("paste-buffer", "-t", "shell");
  }

  /** Type a line and press Enter. */
  line(text: string): void {
    this.type(text);
    this.press("Enter");
  }

  screen(escapes = false): string {
    return this.tmux("capture-pane", "-p", "-J", ...(escapes ? ["-e"] : []), "-t", "shell");
  }

  /** The screen's rows without the empty ones at the bottom. */
  rows(): string[] {
    const rows = this.screen().split("\n").map((row) => row.trimEnd());
    while (rows.length > 0 && rows[rows.length - 1].trim() === "") rows.pop();
    return rows;
  }

  lastRow(): string {
    return this.rows().at(-1) ?? "";
  }

  async waitFor(what: string, check: (t: Terminal) => boolean, timeout = 20_000): Promise<void> {
    const until = Date.now() + timeout;
    while (Date.now() < until) {
      if (check(this)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`timed out waiting for ${what}; the screen:\n${this.screen()}`);
  }

  waitForText(text: string | RegExp, timeout?: number): Promise<void> {
    return this.waitFor(String(text), (t) => (typeof text === "string" ? t.screen().includes(text) : text.test(t.screen())), timeout);
  }

  /** Wait until the prompt (`>>>` or `...`, and what is typed after it) is the last row. */
  waitForPrompt(prompt: string): Promise<void> {
    return this.waitFor(`the prompt ${JSON.stringify(prompt)}`, (t) => t.lastRow() === prompt);
  }

  kill(): void {
    try {
      this.tmux("kill-server");
    } catch {
      // already gone
    }
  }
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const jobsFile = `
- name: late
  topics: [late]
  script: |-
    await sleep(1.5)
    qprint("late line")
- name: finish
  topics: [finish]
  script: |-
    await sleep(1)
    logger.info("finish job done")
- name: chatty
  topics: [chatty]
  script: |-
    await sleep(1)
    console.log("console line", task.content.n)
`;

let dir: string;
let jobs: string;
const open: Terminal[] = [];

function start(env: Record<string, string> = {}, args: string[] = ["--jobs", jobs]): Terminal {
  const t = new Terminal(args, env);
  open.push(t);
  return t;
}

beforeAll(() => {
  if (!existsSync(cli)) throw new Error("dist/cli.js is missing: build first (npm test runs tsc before vitest)");
  dir = mkdtempSync(path.join(tmpdir(), "jobshell-tty-"));
  jobs = path.join(dir, "jobs.yaml");
  writeFileSync(jobs, jobsFile);
});

afterEach(() => {
  for (const t of open.splice(0)) t.kill();
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(tmuxMissing)("the shell in a terminal", { timeout: 90_000 }, () => {
  it("shows the banner and >>>, turns to ... after every line, and runs the block on an empty line", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    const screen = t.screen();
    expect(screen).toMatch(/jobshell \d+\.\d+\.\d+ — memory mode, .*worker in this process, 3 jobs loaded/);
    expect(screen).toContain('Type "help", "commands" for more information.');
    t.line("1 + 1");
    await t.waitForPrompt("...");
    t.press("Enter");
    await t.waitForPrompt(">>>");
    expect(t.rows().slice(-5)).toEqual([">>> 1 + 1", "...", "2", "", ">>>"]);
  });

  it("answers help, commands, jobs and stats typed bare as their calls, as the banner promises", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line("help");
    await t.waitForText("an empty line runs the whole block");
    await t.waitForPrompt(">>>");
    t.line("jobs");
    await t.waitForText(/late\s+topics: late/);
    await t.waitForPrompt(">>>");
    t.line("stats");
    await t.waitForText(/queueDepth:\s+0/);
    await t.waitForPrompt(">>>");
    t.line("commands");
    await t.waitForText("waitfor(taskid, timeout=60)");
    await t.waitForPrompt(">>>");
    expect(t.rows().filter((row) => /^\.\.\.( |$)/.test(row))).toEqual([]);
  });

  it("says under the banner that the saga's jobs get no task while job_transaction_event is off", async () => {
    const t = start({}, ["--jobs", "samples/jobs/saga.yaml"]);
    await t.waitForPrompt(">>>");
    expect(t.rows().at(-2)).toBe(
      "warning: jobs saga-reserve-stock, saga-compensate, saga-report answer Transaction.* topics, but job_transaction_event is off: no such task is issued (start with --job-transaction-event)",
    );
    const on = start({}, ["--jobs", "samples/jobs/saga.yaml", "--job-transaction-event"]);
    await on.waitForPrompt(">>>");
    expect(on.screen()).not.toContain("job_transaction_event is off");
  });

  it("keeps an unfinished block after an empty line, and shows a syntax error at once", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line("x = [1,");
    await t.waitForPrompt("...");
    t.press("Enter");
    await t.waitForPrompt("...");
    t.line("2].length");
    t.press("Enter");
    await t.waitForText(/^2$/m);
    await t.waitForPrompt(">>>");
    t.line("foo)");
    await t.waitForText("SyntaxError: Unexpected token");
    await t.waitForPrompt(">>>");
    // As after any block: the output, a blank line, then the prompt.
    expect(t.rows().slice(-5)).toEqual([">>> foo)", "SyntaxError: Unexpected token", "    at line 1, column 4 of the block: foo)", "", ">>>"]);
  });

  it("toggles debug() with the source's messages and prints job output above a half-typed line", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line("debug()");
    await t.waitForText("debug channel connected");
    expect(t.screen()).toContain(
      "Disconnected the currently subscribed channel and connected to the debug channel ['xaas.hotspot.channel']",
    );
    await t.waitForPrompt(">>>");
    t.line('await task("late")');
    t.press("Enter");
    await t.waitForPrompt(">>>");
    t.type("half typed");
    await t.waitForText("late line");
    await t.waitForPrompt(">>> half typed");
    const rows = t.rows();
    expect(rows.at(-2)).toBe("late line");
    // The line goes on where it was: the rest of the typing lands after it.
    t.type(" more");
    await t.waitForPrompt(">>> half typed more");
    t.press("C-c");
    await t.waitForPrompt(">>>");
    t.line("debug()");
    await t.waitForText("Disconnected the debug channel ['xaas.hotspot.channel']");
  });

  it("prints the in-process worker's log lines above the line being typed too", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line('await task("finish")');
    t.press("Enter");
    await t.waitForPrompt(">>>");
    t.type("still typing");
    await t.waitForText("finish job done");
    await t.waitForPrompt(">>> still typing");
    expect(t.rows().at(-2)).toMatch(/INFO job=finish .*finish job done$/);
  });

  it("prints console.log of a job script above the line being typed", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line('await task("chatty", {n: 1})');
    t.press("Enter");
    await t.waitForPrompt(">>>");
    t.type('let typing = "abc');
    await t.waitForText("console line 1");
    await t.waitForPrompt('>>> let typing = "abc');
    expect(t.rows().at(-2)).toBe("console line 1");
  });

  it("runs lines typed while a block runs after it, one block at a time", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line("order = []");
    t.press("Enter");
    await t.waitForPrompt(">>>");
    t.line('await sleep(1); order.push("first")');
    t.press("Enter");
    t.line('order.push("second")');
    t.press("Enter");
    t.line('order.join(" then ")');
    t.press("Enter");
    await t.waitForText("'first then second'");
  });

  it("takes Tab at the start of a line as indentation, so pasted blocks keep it", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line("if (true) {");
    t.press("Tab");
    t.line("indented = 7");
    t.line("}");
    t.press("Enter");
    await t.waitForPrompt(">>>");
    expect(t.screen()).toMatch(/^\.\.\. \s+indented = 7$/m);
    t.line("indented");
    t.press("Enter");
    await t.waitForText(/^7$/m);
  });

  it("completes members with Tab (json., a record's fields) and topics inside task(\"", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.type("json.lo");
    t.press("Tab");
    await t.waitForPrompt(">>> json.loads");
    t.press("C-c");
    await t.waitForPrompt(">>>");
    t.type('task("la');
    t.press("Tab");
    await t.waitForPrompt('>>> task("late');
    t.press("C-c");
    await t.waitForPrompt(">>>");
    t.line('r = await waitfor(await task("late"))');
    t.press("Enter");
    await t.waitForPrompt(">>>");
    t.type("r.stat");
    t.press("Tab");
    await t.waitForPrompt(">>> r.status");
    t.type(" + r.results[0].st");
    t.press("Tab");
    await t.waitForPrompt(">>> r.status + r.results[0].status");
    t.press("C-c");
    await t.waitForPrompt(">>>");
    t.type("r.yaml_f");
    t.press("Tab");
    await t.waitForPrompt(">>> r.yaml_format");
    t.press("C-c");
    await t.waitForPrompt(">>>");
    t.type("logger.war");
    t.press("Tab");
    await t.waitForPrompt(">>> logger.warning");
  });

  it("shows that a block running past a second runs, what it waits for, and what is typed meanwhile", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    // Two tasks of 1.5 s one after the other: waiting for one of them nearly all the time.
    t.line('for (const n of [1, 2]) await waitfor(await task("late"))');
    t.press("Enter");
    await t.waitFor("the progress line", (x) => /^\(running \d s, waiting for 1 task; Ctrl-C stops waiting\)$/.test(x.lastRow()));
    t.type("1 + 2");
    await t.waitFor("the typed-ahead text", (x) => /^\(running \d s, waiting for 1 task; Ctrl-C stops waiting\) 1 \+ 2$/.test(x.lastRow()));
    await t.waitForPrompt(">>> 1 + 2");
    expect(t.screen()).not.toContain("(running");
    t.press("Enter");
    t.press("Enter");
    await t.waitForText(/^3$/m);
  });

  it("shows a pasted tutorial as in the source: each line after its prompt, output after the block", async () => {
    const t = start({}, ["--jobs", "samples/jobs"]);
    await t.waitForPrompt(">>>");
    t.paste('debug()\nawait task("hello", dict(name="amuro"))\nawait task("world", dict(name="amuro"))\n\n');
    await t.waitForText("Bye, amuro");
    await t.waitForPrompt(">>>");
    const rows = t.rows();
    const from = rows.indexOf(">>> debug()");
    expect(rows.slice(from, from + 6)).toEqual([
      ">>> debug()",
      "Disconnected the currently subscribed channel and connected to the debug channel ['xaas.hotspot.channel']",
      "debug channel connected",
      '>>> await task("hello", dict(name="amuro"))',
      '... await task("world", dict(name="amuro"))',
      "...",
    ]);
    // The jobs run while the block runs: their lines and the block's value may come in either order.
    const after = rows.slice(from + 6);
    const screen = rows.join("\n");
    expect(after, screen).toContain("Hello, amuro");
    expect(after, screen).toContain("Bye, amuro");
    expect(after.some((row) => /^'[0-9a-f]{32}'$/.test(row))).toBe(true);
    expect(after.at(-1)).toBe(">>>");
  });

  it("checks a long pasted block once it is in, not at every line", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    const lines = Array.from({ length: 4000 }, (_, i) => `sum += ${i} // line ${i + 2} of a long paste`);
    const began = Date.now();
    t.paste(["let sum = 0", ...lines, "sum", "", ""].join("\n"));
    await t.waitForText(/^7998000$/m, 60_000);
    // Checked at every line, the block would be parsed 4,000 times, far past this bound: a coarse
    // guard, not a measurement.
    expect(Date.now() - began).toBeLessThan(10_000);
  }, 70_000);

  it("shows a syntax error in a paste at its line; the lines after it start the next block", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.paste("let kept = 1\nkept = = 2\ntypeof kept\n\n");
    await t.waitForText("SyntaxError: Unexpected token");
    await t.waitForText(/^'undefined'$/m); // the block with the error was dropped, `let kept` with it
    const rows = t.rows();
    const at = rows.findIndex((row) => row.startsWith("SyntaxError"));
    expect(rows[at + 1]).toBe("    at line 2, column 8 of the block: kept = = 2");
    // Marked, so that what the next block prints (a ReferenceError, say) is not read as this one's.
    expect(rows[at + 2]).toBe("    the lines after it start a new block: typeof kept");
    expect(rows.at(-1)).toBe(">>>");
  });

  it("stops a block busy in a synchronous loop on Ctrl-C, and goes on", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line("let spins = 0");
    t.press("Enter");
    await t.waitForPrompt(">>>");
    t.line("while (true) { spins++ }");
    t.press("Enter");
    await t.waitFor("the loop to spin", () => !t.screen().includes("KeyboardInterrupt") && t.lastRow() === "...", 5000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.press("C-c");
    await t.waitForText("KeyboardInterrupt: the block was stopped");
    await t.waitForPrompt(">>>");
    t.line("spins > 1000");
    t.press("Enter");
    await t.waitForText(/^true$/m);
    // Raw mode is back: Ctrl-C at the prompt is a key again, and the shell is still there.
    t.press("C-c");
    await t.waitForText("(To exit, press Ctrl-D or type exit())");
    expect(t.screen()).not.toContain("[exit");
  });

  it("clears the block being typed on Ctrl-C", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line("cleared = 1");
    await t.waitForPrompt("...");
    t.type("more");
    t.press("C-c");
    await t.waitForPrompt(">>>");
    t.line("typeof cleared");
    t.press("Enter");
    await t.waitForText("'undefined'");
  });

  it("stops waiting for a running block on Ctrl-C and takes the next one", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line("await sleep(600)");
    t.press("Enter");
    await t.waitFor("the block to start", (s) => s.lastRow() === "...");
    t.press("C-c");
    await t.waitForText("KeyboardInterrupt");
    await t.waitForPrompt(">>>");
    t.line("1 + 2");
    t.press("Enter");
    await t.waitForText(/^3$/m);
  });

  it("lets the rest of a block stopped with Ctrl-C neither issue tasks nor print", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line("await new Promise((r) => setTimeout(r, 1500)); reached = true; await task(\"finish\")");
    t.press("Enter");
    await new Promise((resolve) => setTimeout(resolve, 500));
    t.press("C-c");
    await t.waitForText("KeyboardInterrupt: stopped waiting for the block");
    await t.waitForPrompt(">>>");
    t.line('setTimeout(() => print("late timer"), 1000); await new Promise((r) => setTimeout(r, 1500)); print("late")');
    t.press("Enter");
    await new Promise((resolve) => setTimeout(resolve, 500));
    t.press("C-c");
    await t.waitForPrompt(">>>");
    // Long enough for both blocks to go on, and for the finish job to log had its task been issued.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    t.line("reached");
    t.press("Enter");
    await t.waitForText(/^true$/m);
    const screen = t.screen();
    expect(screen).not.toMatch(/^late( timer)?$/m);
    expect(screen).not.toContain("finish job done");
    expect(screen).not.toMatch(/Uncaught|BlockCancelled/);
  });

  it("exits on Ctrl-D, letting the in-process worker finish the task it holds", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line('await task("finish")');
    t.press("Enter");
    await t.waitForPrompt(">>>");
    t.press("C-d");
    await t.waitForText("[exit 0]");
    const screen = t.screen();
    expect(screen).toContain("finish job done");
    expect(screen.indexOf("finish job done")).toBeLessThan(screen.indexOf("[exit 0]"));
  });

  it("still shows the debug lines of the tasks the worker finishes after Ctrl-D", async () => {
    const t = start();
    await t.waitForPrompt(">>>");
    t.line("debug()");
    await t.waitForText("debug channel connected");
    await t.waitForPrompt(">>>");
    t.line('await task("late")');
    t.press("Enter");
    await t.waitForPrompt(">>>");
    t.press("C-d");
    await t.waitForText("[exit 0]");
    const screen = t.screen();
    expect(screen).toContain("late line");
    expect(screen.indexOf("late line")).toBeLessThan(screen.indexOf("[exit 0]"));
  });

  it("keeps the history across two runs in a file only its owner can read", async () => {
    const history = path.join(dir, "history");
    const first = start({ JOBSHELL_HISTORY: history });
    await first.waitForPrompt(">>>");
    first.line("remembered = 41 + 1");
    first.press("Enter");
    await first.waitForText(/^42$/m);
    first.press("C-d");
    await first.waitForText("[exit 0]");
    expect(readFileSync(history, "utf8")).toContain("remembered = 41 + 1\n");
    expect(statSync(history).mode & 0o777).toBe(0o600);

    const second = start({ JOBSHELL_HISTORY: history });
    await second.waitForPrompt(">>>");
    second.press("Up");
    await second.waitForPrompt(">>> remembered = 41 + 1");
  });

  it("warns once when the history cannot be written, and goes on", async () => {
    const t = start({ JOBSHELL_HISTORY: path.join(dir, "no-such-folder", "history") });
    await t.waitForPrompt(">>>");
    t.line("6 * 7");
    t.press("Enter");
    await t.waitForText(/^42$/m);
    await t.waitForText("warning: cannot write the history file");
  });

  it("colours values in a terminal, and not with NO_COLOR", async () => {
    const coloured = start();
    await coloured.waitForPrompt(">>>");
    coloured.line("12345");
    coloured.press("Enter");
    await coloured.waitForText(/^12345$/m);
    expect(coloured.screen(true)).toMatch(/\x1b\[33m12345/);

    const plain = start({ NO_COLOR: "1" });
    await plain.waitForPrompt(">>>");
    plain.line("12345");
    plain.press("Enter");
    await plain.waitForText(/^12345$/m);
    expect(plain.screen(true)).not.toMatch(/\x1b\[\d+m12345/);
  });
});
