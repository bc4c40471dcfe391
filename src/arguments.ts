// The command line's words: its commands, their flags, the parser that reads them and the --help it
// prints, from one table, so that the parser and --help cannot disagree.
import { existsSync } from "node:fs";
import { decimalNumber, kebabName, paramNames, paramSpecs, paramsHelp, type ParamName } from "./params.js";
import { ParameterError } from "./errors.js";

const commands = ["shell", "worker", "serve", "task", "check", "help"] as const;
export type Command = (typeof commands)[number];

/** Each command: its arguments and queue, and a line on what it does (for --help). */
const commandUsage: Record<Command, { synopsis: string; help: string }> = {
  shell: {
    synopsis: "[shell] [options] [--redis URL | --amqp URL]",
    help: "the interactive >>> shell (the default command), serving the REST API and console at api_url",
  },
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
  "no-serve": { help: "do not serve the REST API and console at api_url from the shell", commands: ["shell"] },
  "read-only": {
    help: "every write (POST, DELETE) answers 403 read_only, for the API and the console alike (JOBSHELL_API_READ_TOKEN: a second token that only reads)",
    commands: ["serve"],
  },
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
export function usage(command?: Command): string {
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

export interface Parsed {
  command: Command;
  /** whether the command was given (`jobshell task --help`) rather than taken as the default */
  named: boolean;
  positional: string[];
  flags: Map<string, string[]>;
  given: Partial<Record<ParamName, string>>;
  /** the flag each given parameter came from, as typed (`--redis` or `--redis-url`), for messages */
  givenFrom: Partial<Record<ParamName, string>>;
}

export function parseArgs(argv: string[]): Parsed {
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

export function commandOf(word: string | undefined): Command {
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
export function switchOn(parsed: Parsed, flag: string): boolean {
  return parsed.flags.get(flag)?.at(-1) === "true";
}

/** What a number flag accepts, and the same in words for its error message. */
interface NumberRule {
  accepts: (n: number) => boolean;
  words: string;
}

// As task() and waitfor() check them, so that the flag's message is the rule that applies.
export const expireRule: NumberRule = { accepts: (n) => n > 0, words: "a positive number of seconds" };
export const timeoutRule: NumberRule = { accepts: () => true, words: "a number of seconds, 0 or more" };
export const portRule: NumberRule = { accepts: (n) => Number.isInteger(n) && n <= 65535, words: "a port number from 0 to 65535" };

export function numberFlag(parsed: Parsed, flag: string, fallback: number, rule: NumberRule): number {
  const raw = parsed.flags.get(flag)?.at(-1);
  if (raw === undefined) return fallback;
  const n = decimalNumber(raw);
  if (n === undefined || !rule.accepts(n)) throw new ParameterError(`--${flag} must be ${rule.words}, got ${raw}`);
  return n;
}
