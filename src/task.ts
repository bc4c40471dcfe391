// The arguments of task() checked and turned into a task ready to queue.
import { randomFillSync } from "node:crypto";
import { describe } from "./describe.js";
import { isMU, isPlainObject } from "./mu.js";
import { nowMs, type QueuedTask } from "./record.js";

export const defaultExpire = 10;

/** Deeper content is refused rather than risk overflowing the stack while it is checked or copied. */
const maxDepth = 100;

export type ExpireArgument = number | { expire?: number } | undefined;

/** A topic names what to do, like an AMQP routing key; it is kept in every record and metric. */
export const maxTopicLength = 255;

/** Build a new task, or throw a TypeError that names the argument at fault. */
export function newTask(topic: unknown, content: unknown = {}, expire: ExpireArgument = undefined): QueuedTask {
  if (typeof topic !== "string" || topic.length === 0) {
    throw new TypeError(`task(): topic must be a non-empty string, got ${describe(topic)}`);
  }
  if (topic.length > maxTopicLength) {
    throw new TypeError(`task(): topic must be at most ${maxTopicLength} characters, got ${topic.length} (data goes in content)`);
  }
  const plain = isMU(content) ? (content as { dictionary: unknown }).dictionary : content;
  if (!isPlainObject(plain)) {
    throw new TypeError(`task(): content must be a plain object of JSON data, got ${describe(content)}`);
  }
  const empty = isEmpty(plain);
  const problem = empty ? undefined : jsonProblem(plain, "content", []);
  if (problem) throw new TypeError(`task(): ${problem}`);
  const seconds = expire !== null && typeof expire === "object" ? expire.expire ?? defaultExpire : expire ?? defaultExpire;
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds <= 0) {
    throw new TypeError(`task(): expire must be a positive number of seconds, got ${describe(seconds)}`);
  }
  return {
    taskid: uuidHex(),
    topic,
    // A copy: the caller may change its object after issuing, the queued task must not change.
    content: empty ? {} : structuredClone(plain),
    expire: seconds,
    createdAt: nowMs(),
  };
}

/** Random bits drawn a few thousand ids at a time: one system call per batch, not per id. */
const idPool = Buffer.allocUnsafe(16 * 4096);
let idOffset = idPool.length;

/** A uuid4 as 32 lowercase hex characters. One flat string: randomUUID() builds its text by
 *  concatenation, and a taskid is kept for as long as its record, so that shape costs memory and GC. */
export function uuidHex(): string {
  if (idOffset === idPool.length) {
    randomFillSync(idPool);
    for (let at = 0; at < idPool.length; at += 16) {
      idPool[at + 6] = (idPool[at + 6] & 0x0f) | 0x40; // version 4
      idPool[at + 8] = (idPool[at + 8] & 0x3f) | 0x80; // RFC 4122 variant
    }
    idOffset = 0;
  }
  const id = idPool.toString("hex", idOffset, idOffset + 16);
  idOffset += 16;
  return id;
}

function isEmpty(value: object): boolean {
  for (const _ in value) return false;
  return true;
}

/**
 * Where a value stops being JSON data, or undefined when all of it is. `seen` holds the objects on
 * the path from the root: a value among them is a cycle.
 */
function jsonProblem(value: unknown, path: string, seen: object[]): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `${path} is ${value}, which JSON cannot hold`;
    case "object": {
      if (value === null) return undefined;
      if (seen.includes(value)) return `${path} refers back to itself`;
      if (seen.length >= maxDepth) return `content is nested deeper than ${maxDepth} levels`;
      seen.push(value);
      const inner = isMU(value) ? (value as { dictionary: unknown }).dictionary : value;
      if (Array.isArray(inner)) {
        for (let i = 0; i < inner.length; i++) {
          const p = jsonProblem(inner[i], `${path}[${i}]`, seen);
          if (p) return p;
        }
      } else if (isPlainObject(inner)) {
        for (const [k, v] of Object.entries(inner)) {
          const p = jsonProblem(v, `${path}.${k}`, seen);
          if (p) return p;
        }
      } else {
        return `${path} is ${describe(inner)}, not JSON data`;
      }
      seen.pop();
      return undefined;
    }
    default:
      return `${path} is ${describe(value)}, not JSON data`;
  }
}

/** Re-exported: the client's other methods name wrong arguments in the same words. */
export { describe };
