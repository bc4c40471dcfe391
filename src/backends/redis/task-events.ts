// Task events: the scripts that queue, start and end tasks publish them on the task-events channel,
// one message a call, but only while the key `watching` exists (include/task-events.lua): a process
// with watchers keeps it alive, so that a queue nobody watches pays one EXISTS a script call.
import type { TaskEvent } from "../../backend.js";
import type { TaskStatus } from "../../record.js";
import type { RedisConnection } from "./connection.js";
import type { Layout } from "./layout.js";

/** How long the `watching` key lives, and how often a watching process renews it. */
const watchingTtlMs = 30_000;
const renewMs = 10_000;

/** As published: [kind, taskid, topic, status, at, startedAt]. */
type EventRow = [TaskEvent["kind"], string, string, TaskStatus, number, number | null];

export class TaskEvents {
  private readonly watchers = new Set<(event: TaskEvent) => void>();
  private renewTimer?: NodeJS.Timeout;
  /** resolves once this process hears the events: while it has watchers */
  private live?: Promise<void>;
  private closed = false;

  constructor(
    private readonly conn: RedisConnection,
    private readonly layout: Layout,
    private readonly onError: (err: unknown) => void,
  ) {}

  async watch(onEvent: (event: TaskEvent) => void): Promise<() => Promise<void>> {
    const watcher = (event: TaskEvent) => onEvent(event);
    this.watchers.add(watcher);
    try {
      await (this.live ??= this.listen());
    } catch (err) {
      this.watchers.delete(watcher);
      if (this.watchers.size === 0) this.live = undefined;
      throw err;
    }
    return async () => {
      if (!this.watchers.delete(watcher) || this.watchers.size > 0) return;
      this.live = undefined;
      clearInterval(this.renewTimer);
      // Not awaited: messages heard after this find no watcher, and a server that is gone must not
      // hold up whoever stops watching (a closing REST server); a later watch() subscribes after it.
      if (!this.closed) this.conn.subscriber.unsubscribe(this.layout.channels.tasks).catch(() => {});
    };
  }

  /** Subscribed, and the scripts told to publish. */
  private async listen(): Promise<void> {
    await this.conn.answered(this.conn.subscriber.subscribe(this.layout.channels.tasks));
    await this.renew();
    clearInterval(this.renewTimer);
    this.renewTimer = setInterval(() => this.renew().catch(this.onError), renewMs).unref();
  }

  private async renew(): Promise<void> {
    await this.conn.answered(this.conn.client.set(this.layout.watching, "1", "PX", watchingTtlMs));
  }

  /** A message on the task-events channel. */
  heard(message: string): void {
    if (this.watchers.size === 0) return;
    for (const [kind, taskid, topic, status, at, startedAt] of JSON.parse(message) as EventRow[]) {
      const event: TaskEvent = { kind, taskid, topic, status, at };
      if (kind === "ended" && startedAt !== null) event.runMs = at - startedAt;
      for (const watcher of this.watchers) watcher(event);
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.renewTimer);
  }
}
