// Job definitions in Redis mode: one hash (name → JSON) shared by every process of the queue, and a
// pub/sub channel on which a change is announced, so that every worker reloads its jobs.
import type { JobStore } from "../../backend.js";
import { mergeDefinitions, type JobDefinition } from "../../definitions.js";
import type { RedisConnection } from "./connection.js";
import type { Layout } from "./layout.js";
import type { Scripts } from "./scripts.js";

export class RedisJobStore implements JobStore {
  private readonly watchers = new Set<() => void>();

  constructor(
    private readonly conn: RedisConnection,
    private readonly scripts: Scripts,
    private readonly layout: Layout,
  ) {}

  async list(): Promise<JobDefinition[]> {
    const all = await this.conn.answered(this.conn.client.hgetall(this.layout.jobs));
    return Object.values(all)
      .map((text) => JSON.parse(text) as JobDefinition)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async put(definitions: JobDefinition[], replace: boolean): Promise<void> {
    // Checked here for the clear message (every conflict named), and again atomically by the script.
    mergeDefinitions(await this.list(), definitions, replace);
    const args: string[] = [this.layout.channels.jobs, replace ? "1" : "0"];
    for (const d of definitions) args.push(d.name, JSON.stringify(d));
    const taken = await this.scripts.putJobs([this.layout.jobs], args);
    if (taken.length > 0) mergeDefinitions(await this.list(), definitions, false);
  }

  async remove(name: string): Promise<boolean> {
    const { client } = this.conn;
    const removed = await this.conn.answered(client.hdel(this.layout.jobs, name));
    if (removed > 0) await this.conn.answered(client.publish(this.layout.channels.jobs, "remove"));
    return removed > 0;
  }

  async watch(onChange: () => void): Promise<() => Promise<void>> {
    this.watchers.add(onChange);
    return async () => {
      this.watchers.delete(onChange);
    };
  }

  /** The job set changed, or a change may have been missed (the subscriber reconnected). */
  changed(): void {
    for (const watcher of this.watchers) watcher();
  }
}
