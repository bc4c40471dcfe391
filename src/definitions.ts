// Job definitions: YAML from files, folders and uploads, validated strictly.
// Every problem is collected before anything is thrown, so one run of `check` shows them all.
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { describe } from "./describe.js";
import { JobDefinitionError, type DefinitionProblem } from "./errors.js";
import { scriptSyntaxError } from "./script.js";

export interface SlackOptions {
  /** bot token, or a `${ENV_VAR}` reference resolved when the bot starts */
  token: string;
  /** Socket Mode app-level token (`xapp-...`), or a `${ENV_VAR}` reference */
  app_token?: string;
  code_injection: boolean;
}

export interface JobDefinition {
  name: string;
  topics: string[];
  /** the body of an async function; absent only for a slack job with code_injection */
  script?: string;
  slack?: SlackOptions;
  /** where it was loaded from: a file path, or `<upload>` */
  source: string;
}

const jobFields = ["name", "topics", "script", "slack"];
const slackFields = ["token", "app_token", "code_injection"];

/**
 * The jobs of one YAML text: a list of jobs, or a single job mapping. An empty text holds no jobs.
 * Throws one JobDefinitionError listing every problem. A job without a usable name is called
 * `#N`, N counting from 1 in the order of the file.
 */
export function parseDefinitions(text: string, file: string): JobDefinition[] {
  const { definitions, problems } = collectDefinitions(text, file);
  if (problems.length > 0) throw new JobDefinitionError(problems);
  return definitions;
}

/**
 * The jobs of files and folders (a folder contributes its `*.yaml` / `*.yml` files, sorted by name,
 * not its sub-folders). All or nothing: every problem of every file is collected and thrown together.
 */
export async function loadDefinitionFiles(paths: string[]): Promise<JobDefinition[]> {
  const problems: DefinitionProblem[] = [];
  const files: string[] = [];
  const seen = new Set<string>();
  const addFile = (file: string) => {
    const key = path.resolve(file);
    if (seen.has(key)) return; // a file named directly and through its folder is read once
    seen.add(key);
    files.push(file);
  };

  for (const given of paths) {
    let isFolder: boolean;
    try {
      isFolder = (await stat(given)).isDirectory();
    } catch (err) {
      problems.push({ file: given, message: fileErrorMessage(err) });
      continue;
    }
    if (!isFolder) {
      addFile(given);
      continue;
    }
    try {
      const entries = await readdir(given, { withFileTypes: true });
      entries
        .filter((e) => !e.isDirectory() && /\.ya?ml$/i.test(e.name))
        .map((e) => e.name)
        .sort()
        .forEach((name) => addFile(path.join(given, name)));
    } catch (err) {
      problems.push({ file: given, message: fileErrorMessage(err) });
    }
  }

  const definitions: JobDefinition[] = [];
  const firstSource = new Map<string, string>();
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      problems.push({ file, message: fileErrorMessage(err) });
      continue;
    }
    const parsed = collectDefinitions(text, file);
    problems.push(...parsed.problems);
    for (const def of parsed.definitions) {
      const other = firstSource.get(def.name);
      if (other !== undefined) {
        problems.push({ file, job: def.name, field: "name", message: `duplicate name: job ${def.name} is also defined in ${other}` });
        continue;
      }
      firstSource.set(def.name, file);
      definitions.push(def);
    }
  }
  if (problems.length > 0) throw new JobDefinitionError(problems);
  return definitions;
}

/**
 * The job files a process is started with, against the definitions its queue already has: returns those
 * to publish (new names, and changed ones when `replace`). A definition the queue has, the same but for
 * the file it was read from, is left as it is: every worker of a deployment starts with the same files.
 * A changed one is refused unless `replace`: a worker restarted with older files must not roll back the
 * jobs of every other (replacing a job is an explicit act).
 */
export function definitionsToPublish(existing: JobDefinition[], files: JobDefinition[], replace: boolean): JobDefinition[] {
  const known = new Map(existing.map((d) => [d.name, d]));
  const changed = files.filter((d) => known.has(d.name) && !sameJob(known.get(d.name)!, d));
  if (changed.length > 0 && !replace) {
    throw new JobDefinitionError(
      changed.map((d) => ({
        file: d.source,
        job: d.name,
        field: "name",
        message: `job ${d.name} differs from the one the queue has (from ${known.get(d.name)!.source}); start with --replace-jobs to replace it`,
      })),
    );
  }
  return files.filter((d) => !known.has(d.name) || changed.includes(d));
}

/** The same job, wherever each was read from. */
export function sameJob(a: JobDefinition, b: JobDefinition): boolean {
  const { source: _a, ...left } = a;
  const { source: _b, ...right } = b;
  return JSON.stringify(left) === JSON.stringify(right);
}

/**
 * The full set after adding `incoming` to `existing`. A name that exists already is refused
 * unless `replace` is set; then the new definition takes the old one's place.
 */
export function mergeDefinitions(existing: JobDefinition[], incoming: JobDefinition[], replace: boolean): JobDefinition[] {
  const problems: DefinitionProblem[] = [];
  const result = [...existing];
  const index = new Map(existing.map((d, i) => [d.name, i]));
  const added = new Set<string>();
  for (const def of incoming) {
    if (added.has(def.name)) {
      problems.push({ file: def.source, job: def.name, field: "name", message: `duplicate name: job ${def.name} is given twice` });
      continue;
    }
    added.add(def.name);
    const at = index.get(def.name);
    if (at === undefined) {
      index.set(def.name, result.length);
      result.push(def);
    } else if (replace) {
      result[at] = def;
    } else {
      problems.push({
        file: def.source,
        job: def.name,
        field: "name",
        message: `job ${def.name} already exists, different (from ${existing[at].source}); to replace it, pass replace: true (replace=True in the shell, ?replace=true on POST /jobs)`,
      });
    }
  }
  if (problems.length > 0) throw new JobDefinitionError(problems);
  return result;
}

/**
 * The definitions as YAML that `parseDefinitions` reads back. Slack tokens are masked unless
 * `secrets: "keep"` (a `${ENV_VAR}` reference is not a secret and is always shown).
 */
export function definitionsToYaml(definitions: JobDefinition[], options: { secrets?: "mask" | "keep" } = {}): string {
  const keep = options.secrets === "keep";
  const shown = (value: string) => (keep || /^\$\{[^}]+\}$/.test(value) ? value : "********");
  const plain = definitions.map((d) => {
    const job: Record<string, unknown> = { name: d.name, topics: [...d.topics] };
    if (d.script !== undefined) job.script = d.script;
    if (d.slack) {
      const slack: Record<string, unknown> = { token: shown(d.slack.token) };
      if (d.slack.app_token !== undefined) slack.app_token = shown(d.slack.app_token);
      slack.code_injection = d.slack.code_injection;
      job.slack = slack;
    }
    return job;
  });
  return YAML.stringify(plain);
}

// ------------------------------------------------------------------------------------------

interface Collected {
  definitions: JobDefinition[];
  problems: DefinitionProblem[];
}

function collectDefinitions(text: string, file: string): Collected {
  const problems: DefinitionProblem[] = [];
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const err of doc.errors) {
      const pos = err.linePos?.[0];
      problems.push({ file, line: pos?.line, column: pos?.col, message: `YAML syntax error: ${yamlMessage(err)}` });
    }
    return { definitions: [], problems };
  }

  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    problems.push({ file, message: `YAML error: ${err instanceof Error ? err.message : String(err)}` });
    return { definitions: [], problems };
  }
  if (root === null || root === undefined) return { definitions: [], problems };

  let entries: unknown[];
  if (Array.isArray(root)) entries = root;
  else if (isMapping(root)) entries = [root];
  else {
    problems.push({ file, message: `expected a list of jobs or a single job mapping, got ${describe(root)}` });
    return { definitions: [], problems };
  }

  const definitions: JobDefinition[] = [];
  const firstIndex = new Map<string, number>();
  entries.forEach((entry, i) => {
    const def = validateJob(entry, i + 1, file, problems);
    if (!def) return;
    const first = firstIndex.get(def.name);
    if (first !== undefined) {
      problems.push({ file, job: def.name, field: "name", message: `duplicate name: job ${def.name} is also job #${first} of this file` });
      return;
    }
    firstIndex.set(def.name, i + 1);
    definitions.push(def);
  });
  return { definitions, problems };
}

/** The definition, or undefined when it has problems (which are added to `problems`). */
function validateJob(entry: unknown, position: number, file: string, problems: DefinitionProblem[]): JobDefinition | undefined {
  const before = problems.length;
  if (!isMapping(entry)) {
    problems.push({ file, job: `#${position}`, message: `a job must be a mapping of ${jobFields.join(", ")}; got ${describe(entry)}` });
    return undefined;
  }
  const name = entry.name;
  const usableName = typeof name === "string" && name.trim() !== "";
  const job = usableName ? name : `#${position}`;
  const add = (field: string | undefined, message: string, extra: Partial<DefinitionProblem> = {}) =>
    problems.push({ file, job, field, message, ...extra });

  for (const key of Object.keys(entry)) {
    if (!jobFields.includes(key)) add(key, unknownFieldMessage(key, jobFields));
  }

  if (!("name" in entry)) add("name", "is required");
  else if (!usableName) add("name", `must be a non-empty string, got ${describe(name)}`);

  const topics = entry.topics;
  if (!("topics" in entry)) add("topics", "is required: a non-empty list of topic names");
  else if (!Array.isArray(topics)) add("topics", `must be a list of topic names, got ${describe(topics)}`);
  else if (topics.length === 0) add("topics", "must not be empty");
  else {
    const seenTopics = new Set<string>();
    topics.forEach((t, i) => {
      if (typeof t !== "string" || t.trim() === "") add(`topics[${i}]`, `must be a non-empty string, got ${describe(t)}`);
      else if (seenTopics.has(t)) add(`topics[${i}]`, `topic ${t} is listed twice`);
      else seenTopics.add(t);
    });
  }

  let slack: SlackOptions | undefined;
  if ("slack" in entry) slack = validateSlack(entry.slack, add);

  const script = entry.script;
  const injection = slack?.code_injection === true;
  if (!("script" in entry)) {
    if (!injection) add("script", "is required (unless slack.code_injection is true)");
  } else if (typeof script !== "string") {
    add("script", `must be a string, got ${describe(script)}`);
  } else {
    const error = scriptSyntaxError(script);
    if (error) add("script", error.message, { line: error.line, column: error.column });
  }

  if (problems.length > before) return undefined;
  const def: JobDefinition = { name: name as string, topics: [...(topics as string[])], source: file };
  if (typeof script === "string") def.script = script;
  if (slack) def.slack = slack;
  return def;
}

function validateSlack(
  value: unknown,
  add: (field: string, message: string) => void,
): SlackOptions | undefined {
  if (!isMapping(value)) {
    add("slack", `must be a mapping of ${slackFields.join(", ")}, got ${describe(value)}`);
    return undefined;
  }
  const fail = (field: string, message: string) => add(`slack.${field}`, message);
  for (const key of Object.keys(value)) {
    if (!slackFields.includes(key)) fail(key, unknownFieldMessage(key, slackFields));
  }
  const { token, app_token, code_injection } = value;
  if (!("token" in value)) fail("token", "is required when slack is given");
  else if (typeof token !== "string" || token.trim() === "") fail("token", `must be a non-empty string, got ${describe(token)}`);
  if ("app_token" in value && (typeof app_token !== "string" || app_token.trim() === ""))
    fail("app_token", `must be a non-empty string, got ${describe(app_token)}`);
  if ("code_injection" in value && typeof code_injection !== "boolean")
    fail("code_injection", `must be true or false, got ${describe(code_injection)}`);
  // Returned even when wrong, so that `script` is judged by whether code_injection is on.
  const options: SlackOptions = { token: token as string, code_injection: code_injection === true };
  if (typeof app_token === "string") options.app_token = app_token;
  return options;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function unknownFieldMessage(key: string, known: string[]): string {
  const near = known.find((k) => editDistance(k, key) <= 2);
  return `unknown field${near ? ` (did you mean ${near}?)` : ""}; known fields: ${known.join(", ")}`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** The parser's message without its own position and excerpt: the problem carries the position. */
function yamlMessage(err: YAML.YAMLError): string {
  if (err.code === "MULTIPLE_DOCS") return "a file holds one YAML document (a list of jobs); found several";
  return err.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
}

function fileErrorMessage(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file or folder";
  if (code === "EACCES") return "permission denied";
  return err instanceof Error ? err.message : String(err);
}
