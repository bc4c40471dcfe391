#!/usr/bin/env node
// The command line. Every command is built on the library API, like any user's program.
import { existsSync, readFileSync } from "node:fs";
import { JobshellError, ParameterError } from "./errors.js";
import { open, type JobShell } from "./jobshell.js";
import { decimalNumber, kebabName, paramNames, paramSpecs, paramsHelp, resolveParams, type ParamName, type Params } from "./params.js";
import { newTask } from "./task.js";
import { stderrLogSink } from "./builtins.js";
import { describeScriptError } from "./script.js";

const usage = `Usage:
  jobshell [shell] [--jobs PATH]... [--replace-jobs] [--redis URL | --amqp URL] [--no-worker] [params]
  jobshell worker  [--jobs PATH]... [--replace-jobs] (--redis URL | --amqp URL) [params]
  jobshell serve   [--port 8080] [--host 127.0.0.1] [--no-worker] [--jobs PATH]... [--replace-jobs] [params]
  jobshell task    TOPIC [JSON] [--expire S] [--wait [--timeout S]] (--redis URL | --amqp URL)
  jobshell check   PATH...

Options:
  --jobs PATH       a job YAML file or a folder of them; may repeat
  --replace-jobs    replace the queue's jobs of the same names where the files differ (else refused)
  --no-worker       do not run a worker in this process
  --config FILE     read parameters from FILE (default: ./jobshell.yaml if present)
  --help, --version

Parameters (flag, then JOBSHELL_<NAME> variable, then config file, then default):
${paramsHelp()}`;

const commands = ["shell", "worker", "serve", "task", "check"] as const;
type Command = (typeof commands)[number];

/**
 * Flags that are not parameters: whether they take a value, and the commands they belong to.
 * `--jobs` and `--config` are taken by every command, since `npm start` puts `--jobs` before any.
 */
const commandFlags: Record<string, { value: boolean; commands?: readonly Command[] }> = {
  jobs: { value: true },
  config: { value: true },
  "no-worker": { value: false, commands: ["shell", "serve"] },
  "replace-jobs": { value: false, commands: ["shell", "worker", "serve"] },
  port: { value: true, commands: ["serve"] },
  host: { value: true, commands: ["serve"] },
  expire: { value: true, commands: ["task"] },
  wait: { value: false, commands: ["task"] },
  timeout: { value: true, commands: ["task"] },
  help: { value: false },
  version: { value: false },
};

/** The most arguments each command takes after its name. */
const argumentLimit: Record<Command, number> = { shell: 0, worker: 0, serve: 0, task: 2, check: Infinity };

interface Parsed {
  command: Command;
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
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      words.push(arg);
      continue;
    }
    const [flag, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const param = byFlag.get(flag);
    const known = Object.hasOwn(commandFlags, flag);
    if (param === undefined && !known) throw new ParameterError(`unknown option --${flag} (see jobshell --help)`);
    const takesValue = param !== undefined || commandFlags[flag].value;
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
  return { command, positional, flags, given, givenFrom };
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
  else hint = command === "task" ? "jobshell task takes TOPIC [JSON]" : `jobshell ${command} takes no arguments`;
  throw new ParameterError(`unexpected argument ${JSON.stringify(extra)} (${hint})`);
}

/** A flag of another command is refused rather than ignored. */
function checkFlagsFit(command: Command, flags: Map<string, string[]>): void {
  for (const flag of flags.keys()) {
    const owners = commandFlags[flag].commands;
    if (owners && !owners.includes(command)) {
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
  if (switchOn(parsed, "help")) {
    process.stdout.write(`${usage}\n`);
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
      await stopOnSignals(js, "serve", () => server.close());
      return 0;
    }
    case "task":
      return issueOne(parsed, params);
  }
}

async function issueOne(parsed: Parsed, params: Params): Promise<number> {
  requireServerMode(params, "task");
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
  const js = await open({ params, worker: false });
  try {
    const taskid = await js.task(topic, body as Record<string, unknown>, expire);
    if (!switchOn(parsed, "wait")) {
      process.stdout.write(`${taskid}\n`);
      return 0;
    }
    const record = await js.waitfor(taskid, timeout);
    process.stdout.write(record.yaml_format);
    return record.status === "completed" ? 0 : 1;
  } finally {
    await js.close();
  }
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
