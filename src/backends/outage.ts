// Whether the queue server can be reached, told once per outage rather than once per dropped
// connection or retry: a backend holds several connections (Redis: commands and pub/sub), each
// reported down and up by name; the server is lost when the first goes down and regained when the
// last is up again.
import type { ConnectionChange } from "../backend.js";

export class Outage {
  private readonly listeners = new Set<(change: ConnectionChange) => void>();
  private readonly down = new Set<string>();
  private since?: number;

  constructor(private readonly location: string) {}

  /** `connection` dropped (again: no news while the outage lasts). */
  lost(connection: string): void {
    this.down.add(connection);
    if (this.since !== undefined) return;
    this.since = Date.now();
    this.tell({ state: "lost", location: this.location });
  }

  /** `connection` is up (a first connect, or one never lost, changes nothing). */
  regained(connection: string): void {
    if (!this.down.delete(connection) || this.down.size > 0 || this.since === undefined) return;
    const downMs = Date.now() - this.since;
    this.since = undefined;
    this.tell({ state: "regained", location: this.location, downMs });
  }

  listen(listener: (change: ConnectionChange) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  private tell(change: ConnectionChange): void {
    for (const listener of this.listeners) listener(change);
  }
}
