// MU: an attribute-access record, the type of `task` in job scripts and of task records.
//
// An MU wraps the object it is given without copying it (every task is wrapped in one, so this
// must be cheap): writes through the MU change that object. Nested plain objects are wrapped
// when they are read, and arrays read as arrays whose plain-object elements read as MU.
//
// Member names: `length`, `has`, `get`, `set`, `merge`, `plus`, `dictionary`, `yaml_format`,
// `json_format`, `b64`, `toJSON` and `toString` are the record's own members. Data under one of
// these keys is kept, listed by `Object.keys` and iteration, and reached with `mu.get(key)` /
// `mu.set(key, value)`; assigning to a member name (`mu.length = 1`) is a TypeError that says so.
// `key in mu` tells whether the record holds the data key, as in Python.
import { inspect } from "node:util";
import YAML from "yaml";
import { describe } from "./describe.js";

const TARGET = Symbol("MU.target");
const ARRAY_TARGET = Symbol("MU.arrayTarget");

type Data = Record<string | symbol, unknown>;

export interface MUMembers {
  /** the number of keys */
  readonly length: number;
  /** whether the record holds `key` (the same as `key in mu`) */
  has(key: string): boolean;
  /** the value under `key`, also when `key` is a member name such as `length` */
  get(key: string): any;
  /** set `key`, also when it is a member name; returns the record */
  set(key: string, value: unknown): MU;
  /** copy the keys of `other` into this record (shallow, like Python's `+=`); returns this record */
  merge(other: object | null | undefined): MU;
  /** a new record: a deep copy of this one with the keys of `other` on top (Python's `+`) */
  plus(other: object | null | undefined): MU;
  /** a deep copy as plain objects and arrays */
  readonly dictionary: Record<string, any>;
  readonly yaml_format: string;
  readonly json_format: string;
  /** the YAML, base64-encoded */
  readonly b64: string;
  toJSON(): Record<string, unknown>;
  /** compact JSON, so that `${mu}` in a template shows the data */
  toString(): string;
  /** the keys */
  [Symbol.iterator](): IterableIterator<string>;
}

export type MU = MUMembers & { [key: string]: any };

const members = new Set<string | symbol>([
  "length",
  "has",
  "get",
  "set",
  "merge",
  "plus",
  "dictionary",
  "yaml_format",
  "json_format",
  "b64",
  "toJSON",
  "toString",
  Symbol.iterator,
  inspect.custom,
]);

/** The member names a record offers besides its data (the shell's Tab completion lists them). */
export const muMembers: readonly string[] = [...members].filter((m): m is string => typeof m === "string");

/** Methods are shared by every record: `this` is the proxy, its data is `this[TARGET]`. */
const methods = {
  has(this: MU, key: string): boolean {
    return Object.hasOwn(dataOf(this), key);
  },
  get(this: MU, key: string): unknown {
    const data = dataOf(this);
    return Object.hasOwn(data, key) ? wrap(data[key]) : undefined;
  },
  set(this: MU, key: string, value: unknown): MU {
    dataOf(this)[key] = unwrap(value);
    return this;
  },
  merge(this: MU, other: object | null | undefined): MU {
    Object.assign(dataOf(this), sourceOf(other, "merge"));
    return this;
  },
  plus(this: MU, other: object | null | undefined): MU {
    return MU(Object.assign(plainCopy(dataOf(this)) as Data, plainCopy(sourceOf(other, "plus"))));
  },
  toJSON(this: MU): Data {
    return dataOf(this);
  },
  toString(this: MU): string {
    return JSON.stringify(dataOf(this));
  },
  *[Symbol.iterator](this: MU): IterableIterator<string> {
    yield* Object.keys(dataOf(this));
  },
  [inspect.custom](this: MU, _depth: number, options: object, inspectFn: typeof inspect = inspect): string {
    return inspectFn(plainCopy(dataOf(this)), options);
  },
};

const recordHandler: ProxyHandler<Data> = {
  get(target, prop, receiver) {
    if (prop === TARGET) return target;
    if (members.has(prop)) {
      switch (prop) {
        case "length":
          return Object.keys(target).length;
        case "dictionary":
          return plainCopy(target);
        case "yaml_format":
          return YAML.stringify(plainCopy(target));
        case "json_format":
          return JSON.stringify(target, null, 2);
        case "b64":
          return Buffer.from(YAML.stringify(plainCopy(target)), "utf8").toString("base64");
        default:
          return (methods as Record<string | symbol, unknown>)[prop];
      }
    }
    if (typeof prop === "string" && Object.hasOwn(target, prop)) return wrap(target[prop]);
    return Reflect.get(target, prop, receiver);
  },
  set(target, prop, value) {
    if (members.has(prop)) {
      throw new TypeError(`${String(prop)} is a member of MU; use .set(${JSON.stringify(String(prop))}, value) to store data under that key`);
    }
    target[prop] = unwrap(value);
    return true;
  },
  has(target, prop) {
    if (typeof prop === "string") return Object.hasOwn(target, prop);
    return members.has(prop) || prop === TARGET || Reflect.has(target, prop);
  },
};

const arrayHandler: ProxyHandler<unknown[]> = {
  get(target, prop, receiver) {
    if (prop === ARRAY_TARGET) return target;
    const value = Reflect.get(target, prop, receiver);
    return typeof prop === "string" && typeof value === "object" ? wrap(value) : value;
  },
  set(target, prop, value, receiver) {
    return Reflect.set(target, prop, unwrap(value), receiver);
  },
};

/** `MU({name: "Amuro Ray", age: 18})`; with no argument, an empty record. An MU given is returned as is. */
export function MU(data?: object | null): MU {
  if (data === undefined || data === null) return wrapRecord({});
  if (isMU(data)) return data;
  if (!isPlainObject(data)) throw new TypeError(`MU() takes a plain object, got ${describe(data)}`);
  return wrapRecord(data as Data);
}

export function isMU(value: unknown): value is MU {
  return typeof value === "object" && value !== null && (value as Data)[TARGET] !== undefined;
}

// No cache of proxies by object: a WeakMap entry costs ten times the proxy itself. Reading a
// nested object twice gives two views of the same data (equal, not identical).
function wrapRecord(data: Data): MU {
  return new Proxy(data, recordHandler) as unknown as MU;
}

function wrap(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    if ((value as unknown as Data)[ARRAY_TARGET] !== undefined) return value;
    return new Proxy(value, arrayHandler);
  }
  if (isMU(value)) return value;
  return isPlainObject(value) ? wrapRecord(value as Data) : value;
}

/** The plain object or array behind a record or a wrapped array; anything else as is. */
function unwrap(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  return (value as Data)[TARGET] ?? (value as Data)[ARRAY_TARGET] ?? value;
}

function dataOf(record: MU): Data {
  return (record as unknown as Data)[TARGET] as Data;
}

function sourceOf(other: object | null | undefined, method: string): Data {
  if (other === undefined || other === null) return {};
  const data = unwrap(other);
  if (!isPlainObject(data)) throw new TypeError(`MU.${method}() takes an MU or a plain object, got ${describe(other)}`);
  return data as Data;
}

/**
 * `{...}` of any realm: the shell's values come from its own context, whose Object.prototype is
 * not this one. Its prototype is null or a prototype that has none itself.
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  // This realm's Object.prototype first: the common case, one lookup.
  return proto === Object.prototype || proto === null || Object.getPrototypeOf(proto) === null;
}

/** A deep copy made of plain objects and arrays (other values, such as Dates, are kept as they are). */
function plainCopy(value: unknown, seen = new Map<object, unknown>()): unknown {
  const data = unwrap(value);
  if (typeof data !== "object" || data === null) return data;
  const done = seen.get(data);
  if (done !== undefined) return done;
  if (Array.isArray(data)) {
    const copy: unknown[] = [];
    seen.set(data, copy);
    for (const item of data) copy.push(plainCopy(item, seen));
    return copy;
  }
  if (!isPlainObject(data)) return data;
  const copy: Data = {};
  seen.set(data, copy);
  for (const key of Object.keys(data)) copy[key] = plainCopy((data as Data)[key], seen);
  return copy;
}
