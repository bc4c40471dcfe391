// Tab completion on a terminal: topics inside `task("` and `issue("`, members after a dot (`r.`,
// `json.lo`, `r.results[0].st`), and the names the shell defines. Values are found by reading
// properties of the shell's context; no code the user typed is run.
import type vm from "node:vm";
import type { JobDefinition } from "../definitions.js";
import { isMU, muMembers } from "../mu.js";
import { keywordsFunction } from "./context.js";

/** readline's completer: the candidates and the text they complete. */
export function complete(line: string, context: vm.Context, jobs: () => JobDefinition[]): [string[], string] {
  const topic = /\b(?:task|issue)\(\s*(["'`])([^"'`\\]*)$/.exec(line);
  if (topic) {
    const topics = new Set(jobs().filter((d) => !d.slack).flatMap((d) => d.topics));
    return [[...topics].filter((t) => t.startsWith(topic[2])).sort(), topic[2]];
  }
  // Tab after nothing or a space is indentation (a pasted block), not a request to complete.
  if (line === "" || /\s$/.test(line)) return [["\t"], ""];
  const member = /((?:[A-Za-z_$][\w$]*)(?:\.[A-Za-z_$][\w$]*|\[\d+\])*)\.([A-Za-z_$][\w$]*)?$/.exec(line);
  if (member) {
    const names = memberNames(valueAt(context, member[1])).filter((n) => n.startsWith(member[2] ?? ""));
    return [names, member[2] ?? ""];
  }
  const word = /[A-Za-z_$][\w$]*$/.exec(line)?.[0] ?? "";
  if (!word) return [[], word];
  const names = Object.getOwnPropertyNames(context).filter((n) => n.startsWith(word) && n !== keywordsFunction);
  return [names.sort(), word];
}

/** The members a value offers: its own names and those of its prototypes, Object's left out; for a
 *  record (MU), its fields and its methods. */
function memberNames(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  const names = new Set<string>();
  let object: unknown = typeof value === "object" || typeof value === "function" ? value : Object(value);
  for (let depth = 0; object && object !== Object.prototype && object !== Function.prototype && depth < 10; depth++) {
    for (const name of Object.getOwnPropertyNames(object)) if (/^[A-Za-z_$][\w$]*$/.test(name) && name !== "constructor") names.add(name);
    object = Object.getPrototypeOf(object);
  }
  if (isMU(value)) for (const name of muMembers) names.add(name);
  return [...names].sort();
}

/** The value a path such as `r.results[0]` names in the context, read property by property;
 *  undefined when any step is missing. */
function valueAt(context: vm.Context, path: string): unknown {
  let value: unknown = context;
  for (const step of path.match(/[A-Za-z_$][\w$]*|\d+/g) ?? []) {
    if (value === null || (typeof value !== "object" && typeof value !== "function")) return undefined;
    try {
      value = (value as Record<string, unknown>)[step];
    } catch {
      return undefined; // a builtin's promise read as its value (see awaitable)
    }
  }
  return value;
}
