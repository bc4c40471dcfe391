// Every key and channel of a Redis-mode queue, all with the namespace as hash tag (`{jobshell}:`
// unless a namespace is given), so that every script touches one cluster slot:
//   <p>normal, <p>recovery, <p>backup:<worker>   lists of taskids
//   <p>idle                                      idle workers (a hash: id → <free slots>:<listing number>)
//   <p>task:<taskid>                             the record (a hash), kept task_record_ttl after its end
//   <p>deletions, <p>deletions:<due>             ended records to delete: due times (ms), their taskids
//   <p>workers, <p>alive:<worker>                the workers, and their heartbeats (with a TTL)
//   <p>jobs                                      job definitions (name → JSON), shared by every process
//   <p>lease:<name>                              a lease (one Slack bot per deployment)
//   <p>index                                     every record's taskid by createdAt (a sorted set), for listing
//   <p>watching                                  exists (with a TTL) while some process watches task events
//   <p>ended, <p>jobs-changed                    pub/sub: a task ended; the job set changed
//   <p>ended:<worker>                            pub/sub, no messages: subscribed with <p>ended by that
//                                                worker's process, which its finish script tells apart
//   <p>task-events                               pub/sub: tasks queued, started, ended, while watched
//   <p>inbox:<worker>                            pub/sub: wake-ups of that worker, listed idle
// The debug channel is the plain pub/sub channel `debug_channel` (xaas.hotspot.channel).
export class Layout {
  readonly prefix: string;
  readonly normal: string;
  readonly recovery: string;
  readonly idle: string;
  readonly deletions: string;
  readonly workers: string;
  readonly jobs: string;
  readonly index: string;
  readonly watching: string;
  /** this process's worker's Backup list and heartbeat */
  readonly backup: string;
  readonly alive: string;
  readonly channels: { ended: string; endedHere: string; jobs: string; debug: string; inbox: string; tasks: string };

  constructor(namespace: string, workerId: string, debugChannel: string) {
    const p = (this.prefix = `{${namespace}}:`);
    this.normal = `${p}normal`;
    this.recovery = `${p}recovery`;
    this.idle = `${p}idle`;
    this.deletions = `${p}deletions`;
    this.workers = `${p}workers`;
    this.jobs = `${p}jobs`;
    this.index = `${p}index`;
    this.watching = `${p}watching`;
    this.backup = this.backupOf(workerId);
    this.alive = this.aliveOf(workerId);
    this.channels = { ended: `${p}ended`, endedHere: `${p}ended:${workerId}`, jobs: `${p}jobs-changed`, debug: debugChannel, inbox: `${p}inbox:${workerId}`, tasks: `${p}task-events` };
  }

  task(taskid: string): string {
    return `${this.prefix}task:${taskid}`;
  }

  backupOf(worker: string): string {
    return `${this.prefix}backup:${worker}`;
  }

  aliveOf(worker: string): string {
    return `${this.prefix}alive:${worker}`;
  }

  lease(name: string): string {
    return `${this.prefix}lease:${name}`;
  }
}
