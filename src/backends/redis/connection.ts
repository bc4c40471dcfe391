// The two connections of a Redis-mode process: `client` for commands and scripts, `subscriber` for
// pub/sub (a subscribed connection can do nothing else). Failures become the errors callers know:
// a server that cannot be used is a ConnectionError when the backend opens, and a server that stops
// answering is a ConnectionError for the call that waited (the REST API answers 503 `unavailable`).
import { Redis, type RedisOptions } from "ioredis";
import { ConnectionError, ParameterError } from "../../errors.js";
import { maskUrl, queueServerUrl } from "../../params.js";

/** A command with no answer by then is presumed lost with its connection. */
const commandTimeoutMs = 10_000;
/** How long close() may spend saying goodbye (Backup to Recovery, heartbeat removed, QUIT) before it
 *  drops the connections: what a worker leaves behind is rescued by the others all the same. */
const goodbyeMs = 5000;

export class RedisConnection {
  /** the URL with its password masked, for messages */
  readonly location: string;
  readonly client: Redis;
  readonly subscriber: Redis;
  /** the database the URL names (its path), if any */
  private readonly database?: number;

  constructor(url: string, connectionName: string) {
    const parsed = queueServerUrl(url, "redis_url", ["redis", "rediss"]);
    const db = parsed.pathname.replace(/^\//, "");
    if (db !== "" && !/^\d+$/.test(db)) {
      throw new ParameterError(`redis_url's database (after the port) must be a number, got ${JSON.stringify(decodeURIComponent(db))}`);
    }
    this.database = db === "" ? undefined : Number(db);
    this.location = maskUrl(url);
    const common: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 20, connectionName };
    // No auto-pipelining: the hot paths already send one script call per batch, and holding every
    // command for the next tick costs more in latency than it saves (bench/redis.js).
    this.client = new Redis(url, { ...common, commandTimeout: commandTimeoutMs });
    this.subscriber = new Redis(url, common);
  }

  /** Connects both, or throws a ConnectionError saying why; later errors go to `onError`. */
  async connect(onError: (err: unknown) => void): Promise<void> {
    // ioredis tells the cause of a failed connection (refused, unknown host) only on its error event.
    let cause: Error | undefined;
    const remember = (err: Error) => (cause = err);
    this.client.on("error", remember);
    this.subscriber.on("error", remember);
    try {
      await this.client.connect();
      await this.client.ping();
      // ioredis reports a database it could not select only as an error event, and goes on in database 0.
      if (this.database !== undefined) await this.client.select(this.database);
      await this.subscriber.connect();
    } catch (err) {
      this.client.disconnect();
      this.subscriber.disconnect();
      const reason = (cause ?? (err as Error)).message.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
      throw new ConnectionError(`cannot use Redis at ${this.location}: ${reason}`, { cause: cause ?? err });
    }
    this.client.off("error", remember);
    this.subscriber.off("error", remember);
    this.client.on("error", onError);
    this.subscriber.on("error", onError);
  }

  /** A plain command's reply, failing as a script call does when Redis does not answer. */
  answered<T>(reply: Promise<T>): Promise<T> {
    return reply.catch((err: unknown) => {
      throw this.unanswered(err);
    });
  }

  /** ioredis's errors for a server that does not answer (a command timed out, retries used up, the
   *  connection closed) as a ConnectionError. Other errors (a script's, a reply's) are returned as they are. */
  unanswered(err: unknown): unknown {
    const e = err as Error | undefined;
    const lost = e?.name === "MaxRetriesPerRequestError" || e?.message === "Command timed out" || e?.message === "Connection is closed.";
    return lost ? new ConnectionError(`Redis at ${this.location} does not answer: ${e.message}`, { cause: err }) : err;
  }

  /** Runs `goodbye` (only while the client is connected) and QUIT, for goodbyeMs at most, then drops
   *  both connections: a server that does not answer leaves a client reconnecting, which would keep
   *  the process alive. */
  async close(goodbye: () => Promise<void>): Promise<void> {
    const leave = async () => {
      if (this.client.status === "ready") await goodbye();
      // QUIT waits for the server: only where it is connected.
      await Promise.allSettled([this.client, this.subscriber].filter((c) => c.status === "ready").map((c) => c.quit()));
    };
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([leave(), new Promise((resolve) => (timer = setTimeout(resolve, goodbyeMs)))]);
    clearTimeout(timer);
    // A connection QUIT has ended already is left alone: disconnect() would start ioredis's
    // disconnectTimeout (2 s) on a stream that closes no more, and keep the process alive that long.
    for (const connection of [this.client, this.subscriber]) if (connection.status !== "end") connection.disconnect();
  }
}
