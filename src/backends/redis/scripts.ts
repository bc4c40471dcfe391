// Calling the Lua scripts of ./lua/: one typed method per command, whose key list is a tuple as long
// as the script's header declares (test/backends/redis-scripts.test.ts holds the two together). A
// script goes by its SHA1, and by its text when the server does not know it yet (a new server, or one
// restarted since). With redis_wait_replicas, the calls that queue or end tasks resolve only once that
// many replicas have their writes (see RedisConnection.confirmWrites).
import { createHash } from "node:crypto";
import { Command } from "ioredis";
import type { RedisConnection } from "./connection.js";
import { scriptNames, scriptText, type ScriptName } from "./lua.js";

const sources = Object.fromEntries(
  scriptNames.map((name) => {
    const lua = scriptText(name);
    return [name, { lua, sha: createHash("sha1").update(lua).digest("hex") }];
  }),
) as Record<ScriptName, { lua: string; sha: string }>;

type Args = (string | number)[];

/** The separator before an argument of `n` bytes, `\r\n$<n>\r\n`, made once for most lengths. */
const separators = Array.from({ length: 256 }, (_, n) => `\r\n$${n}\r\n`);
const separator = (n: number): string => separators[n] ?? `\r\n$${n}\r\n`;

/** A script call (EVALSHA or EVAL), written as one text. ioredis would copy the arguments twice
 *  (flattened, then converted one by one) and write each with its header separately: with the
 *  thousands of arguments of a batch, that is a tenth of node's time. One text, joined once from its
 *  pieces (appending to a string makes an object or two an argument for the collector) and handed to
 *  the socket as it is (it encodes it once), costs half as much per task (bench/redis.js). */
class ScriptCall extends Command {
  constructor(
    name: "evalsha" | "eval",
    private readonly script: string,
    private readonly keyNames: string[],
    private readonly values: Args,
    private readonly servingSlot: number,
  ) {
    super(name, [], { replyEncoding: "utf8" });
  }

  /** On a cluster: the node of the queue's slot (every key of a queue is in it). */
  override getSlot(): number {
    return this.servingSlot;
  }

  override toWritable(): string {
    const { script, keyNames: keys, values } = this;
    const count = String(keys.length);
    // Sized once: grown by push(), the array would be copied as it doubles.
    const parts: string[] = new Array(6 + 2 * (keys.length + values.length));
    parts[0] = `*${3 + keys.length + values.length}\r\n$${this.name.length}\r\n${this.name}`;
    parts[1] = separator(Buffer.byteLength(script));
    parts[2] = script;
    parts[3] = separator(count.length);
    parts[4] = count;
    let at = 5;
    for (const key of keys) {
      parts[at++] = separator(Buffer.byteLength(key));
      parts[at++] = key;
    }
    for (const value of values) {
      // A number's text is ASCII: one byte a character.
      const arg = typeof value === "string" ? value : String(value);
      parts[at++] = separator(typeof value === "string" ? Buffer.byteLength(arg) : arg.length);
      parts[at++] = arg;
    }
    parts[at] = "\r\n";
    return parts.join("");
  }
}

export class Scripts {
  /** Scripts the server has run by their SHA1 since the connection was made. A push resent in full
   *  after NOSCRIPT would come after a finish sent meanwhile: tasks are claimed only by a push whose
   *  script is known (so its finishes cannot overtake it). */
  readonly known = new Set<ScriptName>();

  constructor(
    private readonly conn: RedisConnection,
    /** the queue's cluster slot */
    private readonly slot: number,
    /** redis_wait_replicas */
    private readonly replicas: number,
  ) {}

  pushTasks(keys: [normal: string, idle: string, deletions: string], args: Args, onResend: () => void): Promise<number | [number, string]> {
    return this.run("push-tasks", keys, args, onResend, this.replicas) as Promise<number | [number, string]>;
  }

  takeTasks(
    keys: [normal: string, recovery: string, backup: string, alive: string, workers: string, idle: string, deletions: string],
    args: Args,
  ): Promise<string> {
    return this.run("take-tasks", keys, args) as Promise<string>;
  }

  finishTasks(keys: [backup: string, deletions: string], args: Args): Promise<number> {
    return this.run("finish-tasks", keys, args, undefined, this.replicas) as Promise<number>;
  }

  giveBackTasks(keys: [backup: string, normal: string, idle: string], args: Args): Promise<number> {
    return this.run("give-back-tasks", keys, args) as Promise<number>;
  }

  readRecords(keys: [deletions: string], args: Args): Promise<string> {
    return this.run("read-records", keys, args) as Promise<string>;
  }

  sweepEndedRecords(keys: [deletions: string], args: Args): Promise<number> {
    return this.run("sweep-ended-records", keys, args) as Promise<number>;
  }

  rescueDeadWorker(
    keys: [backup: string, recovery: string, alive: string, workers: string, idle: string, deletions: string],
    args: Args,
  ): Promise<number> {
    return this.run("rescue-dead-worker", keys, args) as Promise<number>;
  }

  retryTasks(keys: [backup: string, recovery: string, idle: string, deletions: string], args: Args): Promise<number> {
    return this.run("retry-tasks", keys, args) as Promise<number>;
  }

  releaseOrphans(keys: [backup: string, recovery: string, idle: string], args: Args): Promise<number> {
    return this.run("release-orphans", keys, args) as Promise<number>;
  }

  putJobs(keys: [jobs: string], args: Args): Promise<string[]> {
    return this.run("put-jobs", keys, args) as Promise<string[]>;
  }

  claimLease(keys: [lease: string], args: Args): Promise<number> {
    return this.run("claim-lease", keys, args) as Promise<number>;
  }

  releaseLease(keys: [lease: string], args: Args): Promise<number> {
    return this.run("release-lease", keys, args) as Promise<number>;
  }

  /** The arguments go in one array, never spread into a call: a push carries thousands. With
   *  `replicas`, the reply waits for WAIT, sent after the call that ran the script. */
  private async run(name: ScriptName, keys: string[], args: Args, onResend?: () => void, replicas = 0): Promise<unknown> {
    const { lua, sha } = sources[name];
    const { conn, slot } = this;
    const client = conn.client;
    const generation = conn.generation;
    const sent = client.sendCommand(new ScriptCall("evalsha", sha, keys, args, slot));
    // WAIT goes right after, in order on the same connection.
    const confirmed = replicas > 0 ? conn.confirmWrites(replicas, slot, generation) : undefined;
    confirmed?.catch(() => {}); // awaited below, once the reply has come
    try {
      const reply = await sent;
      this.known.add(name);
      await confirmed;
      return reply;
    } catch (err) {
      if (!(err as Error).message?.startsWith("NOSCRIPT")) throw conn.unanswered(err);
      this.known.delete(name);
      onResend?.();
      const resent = conn.answered(client.sendCommand(new ScriptCall("eval", lua, keys, args, slot)) as Promise<unknown>);
      const reconfirmed = replicas > 0 ? conn.confirmWrites(replicas, slot, generation) : undefined;
      reconfirmed?.catch(() => {});
      const reply = await resent;
      await reconfirmed;
      return reply;
    }
  }
}
