#!/usr/bin/env node
// The command line. Every command is built on the library API, like any user's program.
import { readFileSync } from "node:fs";
import { commandOf, expireRule, numberFlag, parseArgs, portRule, switchOn, timeoutRule, usage, type Parsed } from "./arguments.js";
import { callout, type CalloutResponse } from "./callout.js";
import type { JobDefinition } from "./definitions.js";
import { ConnectionError, JobshellError, ParameterError, TimeoutError } from "./errors.js";
import { open, type JobShell } from "./jobshell.js";
import { MU } from "./mu.js";
import { maskUrl, resolveParams, type Params } from "./params.js";
import { unhandledTopic } from "./registry.js";
import { newTask } from "./task.js";
import { transactionEventsOff } from "./transaction.js";
import { stderrLogSink } from "./builtins.js";
import { describeScriptError } from "./script.js";

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
      const served = switchOn(parsed, "no-serve") ? undefined : await serveFromShell(js, params.apiUrl);
      // Piped input shows no banner: a server that could not start is told on a terminal's stderr only.
      const terminal = process.stdin.isTTY === true && process.stdout.isTTY === true;
      if (served && !served.server && !terminal && process.stderr.isTTY) process.stderr.write(`jobshell: ${served.line}\n`);
      try {
        return await runShell(js, { color: process.stdout.isTTY === true, worker: !noWorker, serving: served?.line });
      } finally {
        await served?.server?.close();
      }
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
      const readToken = process.env.JOBSHELL_API_READ_TOKEN || undefined;
      const readOnly = switchOn(parsed, "read-only");
      const host = parsed.flags.get("host")?.at(-1) ?? "127.0.0.1";
      const port = numberFlag(parsed, "port", 8080, portRule); // a bad port is refused before connecting
      const js = await openFrom(parsed, params, !noWorker);
      let server: Awaited<ReturnType<typeof serve>>;
      try {
        server = await serve(js, { port, host, token, readToken, readOnly });
      } catch (err) {
        await js.close();
        throw err;
      }
      process.stderr.write(
        `jobshell serve: ${server.url} (${js.location}, ${js.jobs().length} jobs, ` +
          `${noWorker ? "no worker" : "worker in this process"}${token || readToken ? ", bearer token required" : ""}` +
          `${readOnly ? ", read-only" : ""}; console: ${server.url}/console)\n`,
      );
      warnTransactionEventsOff(js, params, "serve");
      await stopOnSignals(js, "serve", () => server.close());
      return 0;
    }
    case "task":
      return issueOne(parsed, params);
  }
}

/**
 * The shell serves the REST API and the console at api_url's address, so that callout(path=...) and
 * a browser reach this very process. It never fails the shell: a port in use, or an address this
 * machine does not have, is one line instead (under the banner). The server does not keep the
 * process alive (a piped shell ends when its input and tasks do).
 */
async function serveFromShell(js: JobShell, apiUrl: string): Promise<{ line: string; server?: { close(): Promise<void> } }> {
  const { serve } = await import("./server/index.js");
  const url = new URL(apiUrl);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
  const token = process.env.JOBSHELL_API_TOKEN || undefined;
  const readToken = process.env.JOBSHELL_API_READ_TOKEN || undefined;
  if (url.protocol !== "http:") return { line: `not serving the REST API: api_url ${maskUrl(apiUrl)} is not http:// (--no-serve hides this line)` };
  try {
    const server = await serve(js, { port, host, token, readToken, unref: true });
    return { line: `console: ${server.url}/console (REST API at ${server.url}; --no-serve turns it off)`, server };
  } catch (err) {
    const code = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    const why = code === "EADDRINUSE" ? `${url.host} is in use (another jobshell?)` : err instanceof JobshellError ? err.message : String(err);
    return { line: `not serving the REST API and console: ${why}; --no-serve hides this line` };
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
