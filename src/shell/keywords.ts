// How the shell's builtins take their arguments: Python-style keyword arguments (tagged by the
// transform, see transform.ts) and values made in the shell's own JavaScript context.
//
// The shell runs blocks in a separate context, so its objects and arrays come from another realm:
// `Object.getPrototypeOf({}) !== Object.prototype` on this side. Arguments are copied into this
// realm before they reach the library, which checks for plain objects.

import { describe } from "../describe.js";
import { isMU, isPlainObject } from "../mu.js";

const KEYWORDS = Symbol("jobshell.keywords");

export type Keywords = Record<string, unknown>;

/** The function the transform calls around `{name: value, ...}` in `f(a, name=value)`. */
export function keywords(values: object): Keywords {
  Object.defineProperty(values, KEYWORDS, { value: true });
  return values as Keywords;
}

export function isKeywords(value: unknown): value is Keywords {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[KEYWORDS] === true;
}

/** The positional arguments and the keyword arguments of a call. */
export function splitArguments(args: unknown[]): { positional: unknown[]; named: Keywords } {
  const last = args[args.length - 1];
  if (args.length > 0 && isKeywords(last)) {
    return { positional: args.slice(0, -1).map((a) => toHost(a)), named: toHost({ ...last }) as Keywords };
  }
  return { positional: args.map((a) => toHost(a)), named: {} };
}

/**
 * A builtin whose parameters have names: `task(topic, content, expire)` may be called as
 * `task("t", expire=30)` and `task(topic="t")`. Unknown or doubled names are TypeErrors, as in Python.
 */
export function namedParameters<R>(name: string, params: readonly string[], fn: (...args: any[]) => R): (...args: unknown[]) => R {
  return (...args: unknown[]) => {
    if (!isKeywords(args[args.length - 1])) {
      // The common call, positional arguments only: copied in place, no split.
      for (let i = 0; i < args.length; i++) args[i] = toHost(args[i]);
      return fn(...args);
    }
    const { positional, named } = splitArguments(args);
    const call = [...positional];
    for (const [key, value] of Object.entries(named)) {
      const at = params.indexOf(key);
      if (at < 0) throw new TypeError(`${name}() got an unexpected keyword argument '${key}' (it takes ${params.join(", ")})`);
      if (at < positional.length) throw new TypeError(`${name}() got multiple values for argument '${key}'`);
      while (call.length < at) call.push(undefined);
      call[at] = value;
    }
    return fn(...call);
  };
}

/**
 * A builtin that takes one record: `dict(name="amuro")`, `MU(name="x", age=18)`,
 * `callout(path="/tasks", method="POST")`. Positional objects (or lists of pairs) and keyword
 * arguments are merged into one object, later ones winning.
 */
export function recordArguments(name: string, args: unknown[]): Record<string, unknown> {
  const { positional, named } = splitArguments(args);
  const merged: Record<string, unknown> = {};
  for (const arg of positional) {
    if (arg === undefined || arg === null) continue;
    if (Array.isArray(arg)) {
      for (const pair of arg) {
        if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError(`${name}() takes [key, value] pairs, got ${describe(pair)}`);
        merged[String(pair[0])] = pair[1];
      }
    } else if (typeof arg === "object") {
      const data = (arg as { dictionary?: unknown }).dictionary ?? arg;
      Object.assign(merged, data);
    } else {
      throw new TypeError(`${name}() takes objects and keyword arguments, got ${describe(arg)}`);
    }
  }
  return Object.assign(merged, named);
}

/**
 * Plain objects and arrays (of any realm) copied into this one; MU records and everything else kept
 * as they are. `seen` (what is copied already: shared and circular references) is made only once a
 * value holds an object.
 */
export function toHost(value: unknown, seen?: Map<object, unknown>): unknown {
  if (typeof value !== "object" || value === null || isMU(value)) return value;
  const done = seen?.get(value);
  if (done !== undefined) return done;
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    seen?.set(value, copy);
    for (const item of value) copy.push(typeof item === "object" && item !== null ? toHost(item, (seen ??= new Map([[value, copy]]))) : item);
    return copy;
  }
  if (!isPlainObject(value)) return value;
  const copy: Record<string, unknown> = {};
  seen?.set(value, copy);
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    copy[key] = typeof item === "object" && item !== null ? toHost(item, (seen ??= new Map([[value, copy]]))) : item;
  }
  return copy;
}
