// Workers' heartbeats and the rescue of dead workers' tasks. A worker keeps a key `alive:<worker>`
// with a time to live of heartbeat_ttl (the take script renews it too) and its id in the worker set;
// every third of that time it also looks at the other workers, and moves the Backup of one whose
// heartbeat lapsed to Recovery, atomically (lua/rescue-dead-worker.lua), where workers take from first.
// The heartbeat's value is the time it was last renewed (epoch ms), for stats()'s view of the workers.
import type { RedisConnection } from "./connection.js";
import type { Layout } from "./layout.js";
import type { Scripts } from "./scripts.js";
import type { Sweeper } from "./sweeper.js";
import type { WorkerView } from "../../backend.js";
import { nowMs } from "../../record.js";

export class Heartbeat {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly conn: RedisConnection,
    private readonly scripts: Scripts,
    private readonly layout: Layout,
    private readonly workerId: string,
    readonly ttlMs: number,
    private readonly sweeper: Sweeper,
    private readonly maxAttempts: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Started by the worker's first take: a process that only issues tasks has no heartbeat. */
  get started(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer) return;
    const beat = async () => {
      await this.conn.client.multi().set(this.layout.alive, String(nowMs()), "PX", this.ttlMs).sadd(this.layout.workers, this.workerId).exec();
      await this.rescueDeadWorkers();
    };
    this.timer = setInterval(() => beat().catch(this.onError), this.ttlMs / 3);
    this.timer.unref();
    beat().catch(this.onError);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A clean stop: the worker is known dead at once, with nothing left to rescue. */
  async forget(): Promise<void> {
    await this.conn.client.multi().del(this.layout.alive).srem(this.layout.workers, this.workerId).exec();
  }

  /** Every worker in the worker set (`ids`, with those presumed dead and not yet rescued), and those
   *  with a heartbeat, with its time. A worker's id is `<host>-<pid>-<random>`. */
  async workers(): Promise<{ ids: string[]; alive: WorkerView[] }> {
    const { client } = this.conn;
    const ids = await this.conn.answered(client.smembers(this.layout.workers));
    if (ids.length === 0) return { ids, alive: [] };
    // One slot (the namespace's hash tag): one MGET on a cluster too.
    const beats = await this.conn.answered(client.mget(ids.map((id) => this.layout.aliveOf(id))));
    const alive: WorkerView[] = [];
    ids.forEach((id, i) => {
      const beat = beats[i];
      if (beat === null || beat === undefined) return;
      const named = /^(.+)-(\d+)-[0-9a-f]{6}$/.exec(id);
      alive.push({ id, lastSeen: Number(beat), ...(named ? { host: named[1], pid: Number(named[2]) } : {}) });
    });
    return { ids, alive };
  }

  private async rescueDeadWorkers(): Promise<void> {
    const { layout } = this;
    const workers = await this.conn.client.smembers(layout.workers);
    for (const worker of workers) {
      if (worker === this.workerId) continue;
      const keys: Parameters<Scripts["rescueDeadWorker"]>[0] = [layout.backupOf(worker), layout.recovery, layout.aliveOf(worker), layout.workers, layout.idle, layout.deletions];
      const now = nowMs();
      await this.scripts.rescueDeadWorker(keys, [layout.prefix, worker, layout.channels.ended, now, this.sweeper.deletionDue(now), this.maxAttempts]);
    }
  }
}
