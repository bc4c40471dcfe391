#!/usr/bin/env node
// The command line. Every command is built on the library API, like any user's program.
import { existsSync, readFileSync } from "node:fs";
import { callout, type CalloutResponse } from "./callout.js";
import type { JobDefinition } from "./definitions.js";
import { ConnectionError, JobshellError, ParameterError, TimeoutError } from "./errors.js";
import { open, type JobShell } from "./jobshell.js";
import { MU } from "./mu.js";
import { decimalNumber, kebabName, maskUrl, paramNames, paramSpecs, paramsHelp, resolveParams, type ParamName, type Params } from "./params.js";
import { unhandledTopic } from "./registry.js";
import { newTask } from "./task.js";
import { transactionEventsOff } from "./transaction.js";
import { stderrLogSink } from "./builtins.js";
import { describeScriptError } from "./script.js";

const commands = ["shell", "worker", "serve", "task", "check", "help"] as const;
type Command = (typeof commands)[number];

/** Each command: its arguments and queue, and a line on what it does (for --help). */
const commandUsage: Record<Command, { synopsis: string; help: string }> = {
  shell: { synopsis: "[shell] [options] [--redis URL | --amqp URL]", help: "the interactive >>> shell (the default command)" },
  worker: { synopsis: "worker [options] (--redis URL | --amqp URL)", help: "a worker with no shell; SIGTERM/SIGINT stop it gracefully" },
  serve: { synopsis: "serve [options] [--redis URL | --amqp URL]", help: "the REST API, and a worker unless --no-worker" },
  task: {
    synopsis: "task TOPIC [JSON] [options] [--redis URL | --amqp URL | --api-url URL]",
    help: "issue one task through the shared queue or, with --api-url or no queue URL, a running jobshell serve",
  },
  check: { synopsis: "check PATH...", help: "check job YAML files; exit 1 listing every problem" },
  help: { synopsis: "help [COMMAND]", help: "this help, or one command's" },
};

/**
 * Flags that are not parameters: the value they take (none for a switch), what they do, and the
 * commands they belong to (none: every command). The parser and --help both read this table.
 */
interface CommandFlag {
  value?: string;
  help: string;
  commands?: readonly Command[];
  /** taken by every command, though listed for `commands` only: `npm start` puts `--jobs` before any */
  everywhere?: boolean;
  /** the one-letter forms (`-h`) */
  short?: string[];
}

const commandFlags: Record<string, CommandFlag> = {
  jobs: { value: "PATH", help: "a job YAML file or a folder of them; may repeat", commands: ["shell", "worker", "serve"], everywhere: true },
  "replace-jobs": { help: "replace the queue's jobs of the same names where the files differ (else refused)", commands: ["shell", "worker", "serve"] },
  "no-worker": { help: "do not run a worker in this process", commands: ["shell", "serve"] },
  port: { value: "N", help: "the port to listen on (default 8080; 0: any free port)", commands: ["serve"] },
  host: { value: "ADDRESS", help: "the address to listen on (default 127.0.0.1; beyond loopback JOBSHELL_API_TOKEN is required)", commands: ["serve"] },
  expire: { value: "S", help: "seconds within which a job must start the task, else it ends expired (default 10)", commands: ["task"] },
  wait: { help: "wait for the task to end and print its record as YAML: exit 0 completed, 3 no job handles the topic, 1 otherwise", commands: ["task"] },
  timeout: { value: "S", help: "with --wait: the most seconds to wait (default 60)", commands: ["task"] },
  config: { value: "FILE", help: "read parameters from FILE (default: ./jobshell.yaml if present)" },
  help: { help: "show this help; after a command, that command's", short: ["h"] },
  version: { help: "show the version", short: ["v", "V"] },
};

const shortFlags = new Map(Object.entries(commandFlags).flatMap(([name, flag]) => (flag.short ?? []).map((c) => [c, name] as const)));

/** `jobshell --help`, or one command's: the usage, every option it takes, then the parameters. */
function usage(command?: Command): string {
  const shown = command ? [command] : commands;
  const lines = ["Usage:"];
  for (const c of shown) lines.push(`  jobshell ${commandUsage[c].synopsis}`, `      ${commandUsage[c].help}`);
  const flags = Object.entries(commandFlags).filter(([, flag]) => !command || !flag.commands || flag.commands.includes(command));
  lines.push("", "Options:");
  for (const [name, flag] of flags) {
    const forms = [`--${name}${flag.value ? ` ${flag.value}` : ""}`, ...(flag.short ?? []).map((c) => `-${c}`)].join(", ");
    const owners = !command && flag.commands ? ` (${flag.commands.join(", ")})` : "";
    lines.push(`  ${forms}${owners}`, `      ${flag.help}`);
  }
  if (command !== "check" && command !== "help") {
    lines.push("", "Parameters (flag, then JOBSHELL_<NAME> variable, then config file, then default):", paramsHelp());
  }
  return lines.join("\n");
}

/** The most arguments each command takes after its name. */
const argumentLimit: Record<Command, number> = { shell: 0, worker: 0, serve: 0, task: 2, check: Infinity, help: 1 };

interface Parsed {
  command: Command;
  /** whether the command was given (`jobshell task --help`) rather than taken as the default */
  named: boolean;
  positional: string[];
  flags: Map<string, string[]>;
  given: Partial<Record<ParamName, string>>;
  /** the flag each given parameter came from, as typed (`--redis` or `--redis-url`), for messages */
  givenFrom: Partial<Record<ParamName, string>>;
}

function parseArgs(argv: string[]): Parsed {
  const byFlag = new Map<string, ParamName>();
  for (const name of paramNames) {
    byFlag.set(kebabName(name), name);
    const short = (paramSpecs[name] as { flag?: string }).flag;
    if (short) byFlag.set(short, name);
  }
  const words: string[] = [];
  const flags = new Map<string, string[]>();
  const given: Partial<Record<ParamName, string>> = {};
  const givenFrom: Partial<Record<ParamName, string>> = {};
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (/^-[A-Za-z]$/.test(arg)) {
      const long = shortFlags.get(arg[1]);
      if (long === undefined) throw new ParameterError(`unknown option ${arg} (see jobshell --help)`);
      arg = `--${long}`;
    }
    if (!arg.startsWith("--")) {
      words.push(arg);
      continue;
    }
    const [flag, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const param = byFlag.get(flag);
    const known = Object.hasOwn(commandFlags, flag);
    if (param === undefined && !known) throw new ParameterError(`unknown option --${flag} (see jobshell --help)`);
    const takesValue = param !== undefined || commandFlags[flag].value !== undefined;
    let value = inline;
    const isSwitch = param !== undefined && paramSpecs[param].kind === "bool";
    // Alone, a true-or-false parameter means true: the next argument is never taken as its value.
    if (isSwitch && value === undefined) value = "true";
    if (!takesValue) value = switchValue(flag, inline);
    else if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new ParameterError(`--${flag} needs a value`);
    }
    if (param) {
      given[param] = value;
      givenFrom[param] = `--${flag}`;
    }
    else flags.set(flag, [...(flags.get(flag) ?? []), value]);
  }
  // The command is the first word wherever it stands, so that `npm start -- serve` works.
  const [first, ...positional] = words;
  const command = commandOf(first);
  checkArguments(command, positional);
  checkFlagsFit(command, flags);
  return { command, named: first !== undefined, positional, flags, given, givenFrom };
}

function commandOf(word: string | undefined): Command {
  if (word === undefined) return "shell";
  if ((commands as readonly string[]).includes(word)) return word as Command;
  if (isSwitchValue(word)) throw new ParameterError(`unexpected argument ${JSON.stringify(word)} (${switchHint(word)})`);
  if (looksLikeJobsPath(word)) throw new ParameterError(`unexpected argument ${JSON.stringify(word)} (did you mean --jobs ${word}?)`);
  throw new ParameterError(`unknown command ${JSON.stringify(word)} (commands: ${commands.join(", ")})`);
}

/** A job file or folder given without `--jobs`, the likeliest reason for a stray word. */
function looksLikeJobsPath(word: string): boolean {
  return /[/\\]|\.ya?ml$/i.test(word) || existsSync(word);
}

/** `true` or `false` on its own was likely meant for the switch before it. */
function isSwitchValue(word: string): boolean {
  return /^(true|false)$/i.test(word);
}

function switchHint(word: string): string {
  return `a switch takes its value as --name=${word}`;
}

function checkArguments(command: Command, positional: string[]): void {
  const extra = positional[argumentLimit[command]];
  if (extra === undefined) return;
  let hint: string;
  if (isSwitchValue(extra)) hint = switchHint(extra);
  else if (command !== "task" && command !== "check" && looksLikeJobsPath(extra)) hint = `did you mean --jobs ${extra}?`;
  else if (command === "task") hint = "jobshell task takes TOPIC [JSON]";
  else if (command === "help") hint = "jobshell help takes one COMMAND";
  else hint = `jobshell ${command} takes no arguments`;
  throw new ParameterError(`unexpected argument ${JSON.stringify(extra)} (${hint})`);
}

/** A flag of another command is refused rather than ignored. */
function checkFlagsFit(command: Command, flags: Map<string, string[]>): void {
  for (const flag of flags.keys()) {
    const { commands: owners, everywhere } = commandFlags[flag];
    if (owners && !everywhere && !owners.includes(command)) {
      throw new ParameterError(`--${flag} is an option of jobshell ${owners.join(" and ")}, not of jobshell ${command}`);
    }
  }
}

/** A switch (`--wait`, `--no-worker`) is on alone or with `=true`, off with `=false`; nothing else. */
function switchValue(flag: string, inline: string | undefined): string {
  if (inline === undefined || inline === "true") return "true";
  if (inline === "false") return "false";
  throw new ParameterError(`--${flag} is a switch: give it alone, or =true or =false, not ${JSON.stringify(inline)}`);
}

/** Whether a switch is on, its last use deciding. */
function switchOn(parsed: Parsed, flag: string): boolean {
  return parsed.flags.get(flag)?.at(-1) === "true";
}

/** What a number flag accepts, and the same in words for its error message. */
interface NumberRule {
  accepts: (n: number) => boolean;
  words: string;
}

// As task() and waitfor() check them, so that the flag's message is the rule that applies.
const expireRule: NumberRule = { accepts: (n) => n > 0, words: "a positive number of seconds" };
const timeoutRule: NumberRule = { accepts: () => true, words: "a number of seconds, 0 or more" };
const portRule: NumberRule = { accepts: (n) => Number.isInteger(n) && n <= 65535, words: "a port number from 0 to 65535" };

function numberFlag(parsed: Parsed, flag: string, fallback: number, rule: NumberRule): number {
  const raw = parsed.flags.get(flag)?.at(-1);
  if (raw === undefined) return fallback;
  const n = decimalNumber(raw);
  if (n === undefined || !rule.accepts(n)) throw new ParameterError(`--${flag} must be ${rule.words}, got ${raw}`);
  return n;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function openFrom(parsed: Parsed, params: Params, worker: boolean): Promise<JobShell> {
  return open({ params, jobs: parsed.flags.get("jobs") ?? [], replaceJobs: switchOn(parsed, "replace-jobs"), worker });
}

function requireServerMode(params: Params, command: string): void {
  if (!params.redisUrl && !params.amqpUrl) {
    throw new ParameterError(`jobshell ${command} needs a shared queue: give --redis URL or --amqp URL (or REDIS_URL / AMQP_URL)`);
  }
}

function warnTransactionEventsOff(js: JobShell, params: Params, command: string): void {
  const notice = transactionEventsOff(js.jobs(), params.jobTransactionEvent);
  if (notice) process.stderr.write(`jobshell ${command}: warning: ${notice}\n`);
}

/** Close on SIGTERM/SIGINT: held tasks finish, then the process exits. A second signal exits at once. */
function stopOnSignals(js: JobShell, what: string, first?: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(130);
      stopping = true;
      process.stderr.write(`jobshell ${what}: ${signal}: finishing the tasks held, then stopping\n`);
      (first ? first().then(() => js.close()) : js.close()).then(resolve, (err) => {
        process.stderr.write(`jobshell ${what}: ${(err as Error).message}\n`);
        resolve();
      });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}

/**
 * A rejection nobody handled or an exception nobody caught is logged, once, and the process goes on:
 * a worker or a server that exits loses what it holds. Job scripts run in threads that report their
 * own (script-thread.ts); what reaches here is a script's with job_in_process (named by its job, from
 * the stack) or a fault of jobshell's. The shell reports its own while a session runs.
 */
function logStrayErrors(what: string): void {
  const report = (event: "uncaughtException" | "unhandledRejection", kind: string) => (err: unknown) => {
    if (process.listenerCount(event) > 1) return;
    const job = err instanceof Error ? /\(?job:([^\s:()]+):\d+:\d+/.exec(err.stack ?? "")?.[1] : undefined;
    const where = !job && err instanceof Error ? err.stack?.split("\n").find((l) => l.trimStart().startsWith("at "))?.trim() : undefined;
    const message = `jobshell ${what}: ${kind}: ${describeScriptError(job ?? "", err)}${where ? ` (${where})` : ""}`;
    stderrLogSink({ level: "error", message, job });
  };
  process.on("uncaughtException", report("uncaughtException", "an exception nobody caught"));
  process.on("unhandledRejection", report("unhandledRejection", "a rejected promise nobody handled"));
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (parsed.command === "help") {
    const [about] = parsed.positional;
    process.stdout.write(`${usage(about === undefined ? undefined : commandOf(about))}\n`);
    return 0;
  }
  if (switchOn(parsed, "help")) {
    process.stdout.write(`${usage(parsed.named ? parsed.command : undefined)}\n`);
    return 0;
  }
  if (switchOn(parsed, "version")) {
    process.stdout.write(`jobshell ${version()}\n`);
    return 0;
  }
  if (parsed.command === "check") return check(parsed.positional);
  const params = resolveParams({ given: parsed.given, givenFrom: parsed.givenFrom, env: process.env, configFile: parsed.flags.get("config")?.at(-1) });
  const noWorker = switchOn(parsed, "no-worker");
  if (parsed.command === "shell" || parsed.command === "worker" || parsed.command === "serve") logStrayErrors(parsed.command);
  switch (parsed.command) {
    case "shell": {
      const { runShell } = await import("./shell/repl.js");
      const js = await openFrom(parsed, params, !noWorker);
      return runShell(js, { color: process.stdout.isTTY === true, worker: !noWorker });
    }
    case "worker": {
      requireServerMode(params, "worker");
      const js = await openFrom(parsed, params, true);
      process.stderr.write(
        `jobshell worker: ${js.location}, ${js.jobs().length} jobs, up to ${params.jobQueueBulkReadSize} tasks at once\n`,
      );
      warnTransactionEventsOff(js, params, "worker");
      await stopOnSignals(js, "worker");
      return 0;
    }
    case "serve": {
      const { serve } = await import("./server/index.js");
      const token = process.env.JOBSHELL_API_TOKEN || undefined;
      const host = parsed.flags.get("host")?.at(-1) ?? "127.0.0.1";
      const port = numberFlag(parsed, "port", 8080, portRule); // a bad port is refused before connecting
      const js = await openFrom(parsed, params, !noWorker);
      let server: Awaited<ReturnType<typeof serve>>;
      try {
        server = await serve(js, { port, host, token });
      } catch (err) {
        await js.close();
        throw err;
      }
      process.stderr.write(
        `jobshell serve: ${server.url} (${js.location}, ${js.jobs().length} jobs, ` +
          `${noWorker ? "no worker" : "worker in this process"}${token ? ", bearer token required" : ""})\n`,
      );
      warnTransactionEventsOff(js, params, "serve");
      await stopOnSignals(js, "serve", () => server.close());
      return 0;
    }
    case "task":
      return issueOne(parsed, params);
  }
}

async function issueOne(parsed: Parsed, params: Params): Promise<number> {
  const [topic, content] = parsed.positional;
  if (topic === undefined) throw new ParameterError("jobshell task needs a TOPIC");
  let body: unknown = {};
  if (content !== undefined) {
    try {
      body = JSON.parse(content);
    } catch (err) {
      throw new ParameterError(`the task content is not valid JSON: ${(err as Error).message}`);
    }
  }
  const expire = numberFlag(parsed, "expire", 10, expireRule);
  const timeout = numberFlag(parsed, "timeout", 60, timeoutRule);
  try {
    newTask(topic, body, expire); // checked before connecting: a bad argument is a usage error
  } catch (err) {
    throw new ParameterError((err as Error).message);
  }
  const wait = switchOn(parsed, "wait");
  // --api-url given, or no queue URL at all: through a running `jobshell serve` (how a memory-mode
  // server is reached); otherwise through the shared queue itself.
  if (parsed.given.api_url !== undefined || (!params.redisUrl && !params.amqpUrl)) {
    return issueThroughApi(params.apiUrl, { topic, content: body as Record<string, unknown>, expire }, wait ? timeout : undefined);
  }
  const js = await open({ params, worker: false });
  try {
    const taskid = await js.task(topic, body as Record<string, unknown>, expire);
    const unhandled = unhandledTopic(js.jobs(), topic);
    if (unhandled) process.stderr.write(`jobshell task: warning: ${unhandled}\n`);
    if (!wait) {
      process.stdout.write(`${taskid}\n`);
      return 0;
    }
    const record = await js.waitfor(taskid, timeout);
    process.stdout.write(record.yaml_format);
    return taskExitCode(record.dictionary);
  } finally {
    await js.close();
  }
}

/** `jobshell task` through the REST API at `apiUrl`, with JOBSHELL_API_TOKEN if set; `timeout` when waiting. */
async function issueThroughApi(apiUrl: string, task: { topic: string; content: Record<string, unknown>; expire: number }, timeout?: number): Promise<number> {
  const token = process.env.JOBSHELL_API_TOKEN || undefined;
  const call = async (method: string, path: string, body?: unknown, seconds = 30) => {
    let response: CalloutResponse;
    try {
      const headers = token ? { authorization: `Bearer ${token}` } : undefined;
      response = await callout({ path, method, body, headers, request_timeout: seconds, raise_error: false }, apiUrl);
    } catch (err) {
      throw new ConnectionError(
        `no jobshell serve answers at ${maskUrl(apiUrl)} (${(err as Error).message}): start one, or give --api-url URL, --redis URL or --amqp URL`,
      );
    }
    let answer: Record<string, any> | undefined;
    try {
      answer = JSON.parse(response.body) as Record<string, any>;
    } catch {
      answer = undefined;
    }
    if (response.code >= 400 || answer === undefined) {
      const reason = answer ? `${answer.error}: ${answer.detail}` : response.body.slice(0, 200);
      throw new ConnectionError(`${maskUrl(apiUrl)} refused ${method} ${path.split("?")[0]}: ${response.code} ${reason}`);
    }
    return { answer, ended: response.headers["x-jobshell-ended"] === "true" };
  };
  const { answer: issued } = await call("POST", "/tasks", task);
  const taskid = String(issued.taskid);
  const { answer: jobs } = await call("GET", "/jobs");
  const unhandled = unhandledTopic(jobs.jobs as JobDefinition[], task.topic);
  if (unhandled) process.stderr.write(`jobshell task: warning: ${unhandled}\n`);
  if (timeout === undefined) {
    process.stdout.write(`${taskid}\n`);
    return 0;
  }
  // The server answers a long poll after at most an hour: ask again until the task ends or time is up.
  const until = Date.now() + timeout * 1000;
  for (;;) {
    const seconds = Math.min(3600, Math.max(0, (until - Date.now()) / 1000));
    const { answer: record, ended } = await call("GET", `/tasks/${taskid}/wait?timeout=${seconds.toFixed(3)}`, undefined, seconds + 30);
    if (ended) {
      process.stdout.write(MU(record).yaml_format);
      return taskExitCode(record);
    }
    if (Date.now() >= until) throw new TimeoutError(taskid, timeout, String(record.status));
  }
}

/** `jobshell task --wait`: 0 completed, 1 failed or expired, 3 completed with no job to run it. */
function taskExitCode(record: { status?: unknown; results?: unknown }): number {
  if (record.status !== "completed") return 1;
  return Array.isArray(record.results) && record.results.length === 0 ? 3 : 0;
}

async function check(paths: string[]): Promise<number> {
  if (paths.length === 0) throw new ParameterError("jobshell check needs at least one PATH");
  const { loadDefinitionFiles } = await import("./definitions.js");
  try {
    const definitions = await loadDefinitionFiles(paths);
    process.stdout.write(`ok: ${definitions.length} jobs (${definitions.map((d) => d.name).join(", ")})\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof JobshellError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // Our own errors are one clear line; anything else is a bug, shown in full.
    const message = err instanceof JobshellError || err instanceof TypeError ? err.message : (err as Error)?.stack ?? String(err);
    process.stderr.write(`jobshell: ${message}\n`);
    process.exitCode = err instanceof ParameterError ? 2 : 1;
  },
);
