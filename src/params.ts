// Every parameter of the service in one table: its default, its type and a line on what
// it does. Flags, `JOBSHELL_*` variables, `jobshell.yaml`, `open()` options, `--help` and the
// README table all come from here.
import { existsSync, readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { ParameterError } from "./errors.js";

type Kind = "int" | "count" | "seconds" | "bool" | "string" | "url";

interface ParamSpec<K extends Kind = Kind> {
  kind: K;
  default: K extends "bool" ? boolean : K extends "int" | "count" | "seconds" ? number : string | undefined;
  help: string;
  /** extra environment variables read after JOBSHELL_<NAME> */
  env?: string[];
  /** extra short flags */
  flag?: string;
  /** the only values a string may take */
  choices?: readonly string[];
}

export const paramSpecs = {
  job_queue_size: { kind: "int", default: 65535, help: "tasks that may wait in the queue; past it task() throws QueueFullError" },
  job_queue_bulk_read_size: { kind: "int", default: 32, help: "tasks a worker takes per read, and the most it runs at once" },
  redis_url: { kind: "url", default: undefined, help: "Redis mode: redis://[:password@]host:port[/db], a cluster redis+cluster://h:p,h:p, or Sentinels redis+sentinel://h:p,h:p/master", env: ["REDIS_URL"], flag: "redis" },
  redis_prefix: { kind: "string", default: "jobshell", help: "Redis mode: the prefix (and cluster hash tag) of every key, so that several queues can share a server" },
  redis_wait_replicas: { kind: "count", default: 0, help: "Redis mode: task() returns, and a task ends, only once that many replicas have it (WAIT)" },
  amqp_url: { kind: "url", default: undefined, help: "AMQP mode: the RabbitMQ server (amqp://user:pass@host:5672[/vhost])", env: ["AMQP_URL"], flag: "amqp" },
  amqp_queue_type: { kind: "string", default: "classic", choices: ["classic", "quorum"], help: "AMQP mode: the task queues' type; quorum ones survive a cluster node's loss" },
  job_transaction_event: { kind: "bool", default: false, help: "issue a Transaction.<Status> task on every transaction status change" },
  job_script_timeout: { kind: "seconds", default: 300, help: "a job script running longer than this fails with a timeout" },
  job_threads: { kind: "int", default: 2, help: "worker threads that run job scripts, many at once each; one a script ends or blocks is replaced" },
  job_memory_limit: { kind: "int", default: 512, help: "MB of heap a script thread may use: past it the thread is ended and its tasks tried again" },
  max_attempts: { kind: "int", default: 3, help: "tries of a task whose worker or script thread died under it, before it ends failed" },
  job_in_process: {
    kind: "bool",
    default: false,
    help: "run scripts in the worker's own thread: faster, but a script can then end, block or bloat the process",
  },
  task_record_ttl: { kind: "seconds", default: 3600, help: "how long a task's record is kept for waitfor() and GET /tasks/{id}" },
  debug_channel: { kind: "string", default: "xaas.hotspot.channel", help: "the pub/sub channel qprint() publishes to and debug() shows" },
  api_url: { kind: "url", default: "http://127.0.0.1:8080", help: "the REST API of `jobshell serve`, for callout(path=...) and `jobshell task`" },
  slack_api_url: { kind: "url", default: "https://slack.com/api", help: "the Slack Web API base URL (a local fake in tests)" },
} satisfies Record<string, ParamSpec>;

export type ParamName = keyof typeof paramSpecs;

type CamelCase<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S;
type ValueOf<N extends ParamName> = (typeof paramSpecs)[N]["kind"] extends "bool"
  ? boolean
  : (typeof paramSpecs)[N]["kind"] extends "int" | "count" | "seconds"
    ? number
    : undefined extends (typeof paramSpecs)[N]["default"]
      ? string | undefined
      : string;

/** Resolved parameters, camelCase (`jobQueueSize`, `redisUrl`, ...). */
export type Params = { [N in ParamName as CamelCase<N>]: ValueOf<N> };

export const paramNames = Object.keys(paramSpecs) as ParamName[];

export function camelName(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function kebabName(name: string): string {
  return name.replace(/_/g, "-");
}

export function envName(name: string): string {
  return `JOBSHELL_${name.toUpperCase()}`;
}

/** A plain decimal number such as `10` or `0.5`; undefined for anything else (signs, exponents, hex, blanks). */
export function decimalNumber(text: string): number | undefined {
  if (!/^\d+(\.\d+)?$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** Check and convert one value, naming the parameter and where the value came from when it is wrong. */
export function convertParam(name: ParamName, raw: unknown, from: string): unknown {
  const spec: ParamSpec = paramSpecs[name];
  const bad = (what: string) =>
    new ParameterError(`${name} (from ${from}) must be ${what}, got ${JSON.stringify(raw)}`);
  switch (spec.kind) {
    case "int": {
      const n = typeof raw === "string" ? decimalNumber(raw) ?? raw : raw;
      if (typeof n !== "number" || !Number.isInteger(n) || n < 1) throw bad("a positive integer");
      return n;
    }
    case "count": {
      const n = typeof raw === "string" ? decimalNumber(raw) ?? raw : raw;
      if (typeof n !== "number" || !Number.isInteger(n) || n < 0) throw bad("a whole number (0 or more)");
      return n;
    }
    case "seconds": {
      const n = typeof raw === "string" ? decimalNumber(raw) ?? raw : raw;
      if (typeof n !== "number" || !Number.isFinite(n) || n <= 0) throw bad("a positive number of seconds");
      return n;
    }
    case "bool": {
      if (typeof raw === "boolean") return raw;
      if (typeof raw === "string" && /^(true|1|yes|on)$/i.test(raw)) return true;
      if (typeof raw === "string" && /^(false|0|no|off)$/i.test(raw)) return false;
      throw bad("true or false");
    }
    case "string":
      if (typeof raw !== "string" || raw === "") throw bad("a non-empty string");
      if (spec.choices && !spec.choices.includes(raw)) throw bad(`one of ${spec.choices.join(", ")}`);
      return raw;
    case "url": {
      if (typeof raw !== "string") throw bad("a URL");
      try {
        new URL(firstHost(raw));
      } catch {
        throw new ParameterError(`${name} (from ${from}) is not a valid URL: ${maskUrl(raw)}`);
      }
      return raw;
    }
  }
}

export interface ParamSources {
  /** values given on the command line or to open(), by parameter name (snake or camel case) */
  given?: Record<string, unknown>;
  /** what messages call a given value (the flag it came from); "options" when not named */
  givenFrom?: Partial<Record<ParamName, string>>;
  env?: NodeJS.ProcessEnv;
  /** a config file; without it `jobshell.yaml` in the working directory is read if present; `false` reads none */
  configFile?: string | false;
}

/** Where a value came from: its rank (0 for a flag or option, 1 a variable, 2 the config file, 3 the default) and its name. */
interface Source {
  rank: number;
  from: string;
}

/** Flags and open() options first, then environment variables, then the config file, then defaults. */
export function resolveParams(sources: ParamSources = {}): Params {
  const env = sources.env ?? process.env;
  const fromFile = readConfigFile(sources.configFile);
  const given = new Map<string, unknown>();
  for (const [key, value] of Object.entries(sources.given ?? {})) {
    if (value !== undefined) given.set(key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/-/g, "_"), value);
  }
  const out: Record<string, unknown> = {};
  const sourceOf = new Map<ParamName, Source>();
  for (const name of paramNames) {
    const spec: ParamSpec = paramSpecs[name];
    let value: unknown = spec.default;
    let source: Source = { rank: 3, from: "default" };
    if (given.has(name)) {
      source = { rank: 0, from: sources.givenFrom?.[name] ?? "options" };
      value = convertParam(name, given.get(name), source.from);
    } else {
      const envVar = [envName(name), ...(spec.env ?? [])].find((v) => env[v] !== undefined && env[v] !== "");
      if (envVar) {
        source = { rank: 1, from: envVar };
        value = convertParam(name, env[envVar], envVar);
      } else if (fromFile.values[name] !== undefined) {
        source = { rank: 2, from: fromFile.path };
        value = convertParam(name, fromFile.values[name], fromFile.path);
      }
    }
    sourceOf.set(name, source);
    out[camelName(name)] = value;
  }
  const params = out as Params;
  chooseQueueMode(params, sourceOf.get("redis_url")!, sourceOf.get("amqp_url")!);
  return params;
}

/**
 * One queue mode: the URL from the higher-precedence source wins and the other is dropped, so that
 * `--amqp` overrides REDIS_URL. Both at the same level (two flags, two variables, one file) conflict.
 */
function chooseQueueMode(params: Params, redis: Source, amqp: Source): void {
  if (!params.redisUrl || !params.amqpUrl) return;
  if (redis.rank === amqp.rank) {
    throw new ParameterError(`redis_url (from ${redis.from}) and amqp_url (from ${amqp.from}) are both set: choose one queue mode`);
  }
  if (redis.rank < amqp.rank) params.amqpUrl = undefined;
  else params.redisUrl = undefined;
}

function readConfigFile(path: string | false | undefined): { path: string; values: Record<string, unknown> } {
  if (path === false) return { path: "", values: {} };
  const file = path ?? "jobshell.yaml";
  if (!existsSync(file)) {
    if (path) throw new ParameterError(`config file ${path} does not exist`);
    return { path: file, values: {} };
  }
  let values: unknown;
  try {
    values = parseYaml(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ParameterError(`config file ${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  if (values == null) return { path: file, values: {} };
  if (typeof values !== "object" || Array.isArray(values)) {
    throw new ParameterError(`config file ${file} must be a mapping of parameter: value`);
  }
  for (const key of Object.keys(values)) {
    if (!Object.hasOwn(paramSpecs, key)) throw new ParameterError(`config file ${file}: unknown parameter ${key}`);
  }
  return { path: file, values: values as Record<string, unknown> };
}

/** A URL with its password replaced by `***`, safe to print. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString().replace(/\/$/, url.endsWith("/") ? "/" : "");
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, "//$1:***@");
  }
}

/** The URL with only the first of a comma-separated list of hosts (a cluster's seed nodes, Sentinels),
 *  which new URL() refuses. */
export function firstHost(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?[^,/?#]*),[^/?#]*/i, "$1");
}

/** A queue server's URL parsed (of its first host, if it lists several), or a ParameterError naming the parameter: not a URL, or not of one of
 *  `schemes` (given without `:`). */
export function queueServerUrl(url: string, param: string, schemes: readonly string[]): URL {
  let parsed: URL;
  try {
    parsed = new URL(firstHost(url));
  } catch {
    throw new ParameterError(`${param} is not a valid URL: ${maskUrl(url)}`);
  }
  if (!schemes.includes(parsed.protocol.slice(0, -1))) {
    throw new ParameterError(`${param} must start with ${schemes.map((s) => `${s}://`).join(" or ")}, got ${maskUrl(url)}`);
  }
  return parsed;
}

/** The parameters section of `--help`. */
export function paramsHelp(): string {
  const rows = paramNames.map((name) => {
    const spec: ParamSpec = paramSpecs[name];
    // a true-or-false flag alone means true
    const flag = `--${kebabName(name)}${spec.kind === "bool" ? "[=false]" : ""}${spec.flag ? `, --${spec.flag}` : ""}`;
    const vars = [envName(name), ...(spec.env ?? [])].join(", ");
    const def = spec.default === undefined ? "none" : String(spec.default);
    return `  ${flag}\n      ${spec.help}\n      default: ${def}; env: ${vars}`;
  });
  return rows.join("\n");
}

/** The README's parameters table, from the same source as `--help`. */
export function paramsMarkdown(): string {
  const head = "| parameter | flag | variable | default | what it does |\n|---|---|---|---|---|";
  const rows = paramNames.map((name) => {
    const spec: ParamSpec = paramSpecs[name];
    const flag = `\`--${kebabName(name)}\`${spec.flag ? ` / \`--${spec.flag}\`` : ""}`;
    const vars = [envName(name), ...(spec.env ?? [])].map((v) => `\`${v}\``).join(" / ");
    const def = spec.default === undefined ? "none" : `\`${spec.default}\``;
    return `| \`${name}\` | ${flag} | ${vars} | ${def} | ${spec.help} |`;
  });
  return [head, ...rows].join("\n");
}
