// The shell commands: `debug()`, `help()`, `commands()`, `jobs()`, `stats()`, and the banner.
import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import type { ConnectionChange, QueueView, WorkerView } from "../backend.js";
import { describe } from "../describe.js";
import type { Colors } from "./output.js";
import { internals } from "../internals.js";
import type { JobShell, Stats } from "../jobshell.js";
import type { ShellOutput } from "./output.js";
import { metricsTable } from "../metrics.js";

/** What `commands()` lists: every name the shell defines, with a line on each. */
export const commandHelp: [string, string][] = [
  ["debug()", "toggle the debug channel: every job's qprint line is shown above the prompt"],
  ["help()", "how the shell works"],
  ["commands()", "this list"],
  ["jobs()", "the jobs loaded, with their topics"],
  ["stats()", "the depth of the queue and this process's counters (a value: (await stats()).issued)"],
  ["exit() / quit()", "leave the shell (Ctrl-D too); the in-process worker finishes what it holds"],
  ['task(topic, content={}, expire=10)', "issue a task to every job on the topic; returns its taskid"],
  ["waitfor(taskid, timeout=60)", "wait for a task to end; returns its record (an MU)"],
  ["await record(taskid)", "a task's record as it is now, without waiting for it to end"],
  ["upload(yamlText, replace=False)", "add jobs from YAML text; returns their names"],
  ["load(path, replace=False)", "add jobs from a YAML file or a folder of them"],
  ["dict(name=value, ...)", "a plain object from keyword arguments"],
  ["MU(name=value, ...)", "an attribute-access record: .dictionary, .yaml_format, .json_format, .b64"],
  ["print(...values, sep=' ', end='\\n')", "print values"],
  ["json.loads(text) / json.dumps(value, indent)", "JSON text to value and back"],
  ["callout(path=, method=, body=, headers=, url=, timeout=)", "HTTP request (a path goes to the REST API at api_url)"],
  ["sleep(seconds)", "wait"],
  ["transaction(name, data)", "begin a transaction, or take up a known one (its status changes issue Transaction.* tasks)"],
  ["issue(topic, content, expire)", "the same as task(), under the name job scripts use"],
  ["qprint(...values)", "print values (in a job script it publishes to the debug channel)"],
  ["logger.debug/info/warning/error/critical(...)", "log lines"],
  ["True, False, None", "true, false, null"],
  ["require(name)", "a Node module or package, from the working directory"],
];

export const helpText = `Type JavaScript at the >>> prompt. Every line goes into a block (the prompt becomes ...);
an empty line runs the whole block as one async program, so 'await' works anywhere.
An unfinished block (an open brace, call or template) keeps reading; a syntax error is shown at once.
Names you declare (const, let, var, function, class, or a bare x = ...) stay defined for later blocks.
Python-style keyword arguments work in calls to the shell's builtins:
    taskid = await task("hello", dict(name="amuro"), expire=30)
    r = await waitfor(taskid, timeout=5)
    print(r.yaml_format)
debug(), help(), commands(), jobs(), stats(), exit() typed alone on the >>> line run at once
(the parentheses may be left out).
Ctrl-C clears the block being typed, or stops waiting for the running one; Ctrl-D on an empty
prompt leaves the shell. Type commands() for every builtin.`;

export interface CommandsOptions {
  js: JobShell;
  out: ShellOutput;
  colors: Colors;
}

export class ShellCommands {
  private stopDebug?: () => Promise<void>;

  constructor(private readonly options: CommandsOptions) {}

  get debugOn(): boolean {
    return this.stopDebug !== undefined;
  }

  /** Toggle the subscription to the debug channel, with the messages of the source's shell. */
  async debug(): Promise<void> {
    const { js, out } = this.options;
    const channel = `['${internals(js).params.debugChannel}']`;
    if (this.stopDebug) {
      const stop = this.stopDebug;
      this.stopDebug = undefined;
      await stop();
      out.line(`Disconnected the debug channel ${channel}`);
      return;
    }
    out.line(`Disconnected the currently subscribed channel and connected to the debug channel ${channel}`);
    this.stopDebug = await js.onDebug((line) => out.line(line));
    out.line("debug channel connected");
  }

  help(): void {
    this.options.out.line(helpText);
  }

  commands(): void {
    const { out, colors } = this.options;
    // Long signatures get their line of text below them, so the list stays narrow.
    const width = 34;
    for (const [name, text] of commandHelp) {
      if (name.length <= width) out.line(`  ${colors.bold(name.padEnd(width))}  ${text}`);
      else out.line(`  ${colors.bold(name)}\n  ${" ".repeat(width)}  ${text}`);
    }
  }

  jobs(): void {
    const { js, out, colors } = this.options;
    const jobs = js.jobs();
    if (jobs.length === 0) {
      out.line("No jobs loaded. Add some with upload(yamlText) or load(path).");
      return;
    }
    const width = Math.max(...jobs.map((j) => j.name.length));
    for (const job of jobs) {
      const slack = job.slack ? colors.dim(job.slack.code_injection ? " (slack bot, code injection)" : " (slack bot)") : "";
      out.line(`  ${colors.bold(job.name.padEnd(width))}  topics: ${job.topics.join(", ")}${slack}  ${colors.dim(job.source)}`);
    }
  }

  /** The counters as a value (`(await stats()).issued`) that is shown as their table. */
  async stats(): Promise<ShellStats> {
    const { js } = this.options;
    return new ShellStats(await js.stats(), internals(js).hasWorker, metricsTable(internals(js).metrics));
  }
}

/**
 * What `stats()` returns: the fields of `js.stats()`, shown as a table that says which are the
 * queue's (every process's) and which this process's own. Without a worker here, the tasks this
 * shell issued are run, and counted, by the workers that took them.
 */
export class ShellStats implements Stats {
  declare readonly mode: string;
  declare readonly location: string;
  declare readonly jobs: number;
  declare readonly queueDepth: number;
  declare readonly inFlight: number;
  declare readonly issued: number;
  declare readonly completed: number;
  declare readonly failed: number;
  declare readonly expired: number;
  declare readonly queues?: QueueView[];
  declare readonly workers?: WorkerView[];
  declare readonly worker: boolean;

  constructor(stats: Stats, worker: boolean, table: string[]) {
    Object.assign(this, stats, { worker });
    Object.defineProperty(this, "table", { value: table, enumerable: false });
  }

  [inspect.custom](): string {
    const table = (this as unknown as { table: string[] }).table;
    const row = (key: Exclude<keyof Stats, "queues" | "workers">, what = "") => `    ${`${key}:`.padEnd(11)} ${String(this[key]).padEnd(6)} ${what}`.trimEnd();
    return [
      `  mode: ${this.mode}, ${this.location}, ${this.jobs} job${this.jobs === 1 ? "" : "s"}`,
      "  the queue (every process):",
      row("queueDepth", "tasks waiting"),
      ...deploymentLines(this.queues, this.workers),
      `  this process (${this.worker ? "worker in this process" : "no worker in this process: --no-worker"}):`,
      row("issued", "tasks issued from here"),
      row("inFlight", "tasks its worker is running"),
      row("completed", "tasks its worker ended, by status"),
      row("failed"),
      row("expired"),
      ...(table.length > 0 ? ["", ...table] : []),
    ].join("\n");
  }
}

/** The deployment's queues and workers in a line each (a long list cut short). */
function deploymentLines(queues: QueueView[] | undefined, workers: WorkerView[] | undefined): string[] {
  const shown = 4;
  const list = (items: string[]) => items.slice(0, shown).join(", ") + (items.length > shown ? `, and ${items.length - shown} more` : "");
  const lines: string[] = [];
  if (queues && queues.length > 0) {
    lines.push(`    queues:     ${list(queues.map((q) => `${q.name} ${q.depth}${q.consumers === undefined ? "" : ` (${q.consumers} consumer${q.consumers === 1 ? "" : "s"})`}`))}`);
  }
  if (workers) {
    const now = Date.now();
    const seen = workers.map((w) => `${w.id} seen ${Math.max(0, (now - w.lastSeen) / 1000).toFixed(1)} s ago`);
    lines.push(`    workers:    ${workers.length}${seen.length > 0 ? `: ${list(seen)}` : ""}`);
  }
  return lines;
}

/** What the shell says when the queue server is lost, and when it is back. */
export function connectionLine(change: ConnectionChange, mode: string): string {
  const server = mode === "amqp" ? "RabbitMQ" : mode === "redis" ? "Redis" : mode;
  if (change.state === "lost") return `lost the ${server} server at ${change.location}: reconnecting (tasks in flight carry on once it is back)`;
  return `${server} server regained after ${(change.downMs / 1000).toFixed(1)} s`;
}

/** The status `exit(code)` ends the shell with: an integer a process can exit with; none is 0. */
export function exitStatus(code: unknown): number {
  if (code === undefined || code === null) return 0;
  if (typeof code !== "number" || !Number.isInteger(code) || code < 0 || code > 255) {
    throw new TypeError(`exit(): the code must be an integer from 0 to 255, got ${describe(code)}`);
  }
  return code;
}

/** The product's version, from its package.json. */
export function productVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** A URL with its password (and a user name that is only a token) replaced by `****`. */
export function maskPassword(location: string): string {
  return location.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s]*)@/gi, (_, scheme: string, auth: string) => {
    const at = auth.indexOf(":");
    return at < 0 ? `${scheme}****@` : `${scheme}${auth.slice(0, at)}:****@`;
  });
}

export function banner(js: JobShell, colors: Colors, now = new Date()): string {
  const jobs = js.jobs().length;
  const worker = internals(js).hasWorker ? "worker in this process" : "no worker in this process (--no-worker)";
  const when = now.toString().replace(/ \(.*\)$/, "");
  return [
    `${colors.bold("jobshell")} ${productVersion()} — ${js.mode} mode, ${maskPassword(js.location)}, ${worker}, ${jobs} job${jobs === 1 ? "" : "s"} loaded`,
    `${when}`,
    'Type "help", "commands" for more information.',
  ].join("\n");
}
