// What a request may do, decided once when the server authenticates it: every route (the REST API
// and the console alike) asks here instead of looking at headers itself, so that a read-only
// deployment is enforced on the server, not by hiding buttons.
import type { IncomingMessage } from "node:http";

export type Access = "read" | "write";

const granted = new WeakMap<IncomingMessage, Access>();

/** Set by the server's authentication, before any route runs. */
export function grant(req: IncomingMessage, access: Access): void {
  granted.set(req, access);
}

/** True when the request may change something (issue tasks, upload or delete jobs). */
export function canWrite(req: IncomingMessage): boolean {
  return granted.get(req) === "write";
}
