// What Redis mode keeps of a task besides its record's state, and what a take or a handover tells a
// worker of each task it is given.
import type { Lease, StartResult } from "../../backend.js";

/** The record's `task` field: what a worker needs of the task besides its times. */
export interface StoredTask {
  topic: string;
  content: Record<string, unknown>;
  job?: string;
}

/** A task a worker was given: taskid, attempt (0 expired, -1 gone), the stored task (null when the
 *  record is gone), expire, createdAt, startedAt. */
export type TakenRow = [string, number, StoredTask | null, number, number, number];

/** The tasks a take (or a push handing tasks over) gives this worker, from its flat text: a header (the
 *  take's listed flag, a handover's listing number), startedAt, then five values a task (see
 *  lua/take-tasks.lua). A take that found none tells instead of startedAt the free slots it listed the
 *  worker with: `free`. */
export function takenRows(text: string): { header: number; rows: TakenRow[]; free: number } {
  const flat = JSON.parse(text) as [number, number, ...unknown[]];
  const startedAt = flat[1];
  const rows: TakenRow[] = [];
  for (let i = 2; i < flat.length; i += 5) {
    rows.push([flat[i] as string, flat[i + 1] as number, flat[i + 2] as StoredTask | null, flat[i + 3] as number, flat[i + 4] as number, startedAt]);
  }
  return { header: flat[0], rows, free: rows.length === 0 ? (flat[1] ?? 0) : 0 };
}

export interface RedisLease extends Lease {
  /** what the take made of the task */
  started: StartResult;
  /** when the take started it (epoch ms), as the record says */
  startedAt: number;
}
