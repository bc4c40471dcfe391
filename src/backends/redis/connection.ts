// The two connections of a Redis-mode process: `client` for commands and scripts, `subscriber` for
// pub/sub (a subscribed connection can do nothing else), to one server, a Redis Cluster or the master
// a set of Sentinels names (./url.ts). Failures become the errors callers know: a server that cannot
// be used is a ConnectionError when the backend opens, and a server that stops answering is a
// ConnectionError for the call that waited (the REST API answers 503 `unavailable`).
import { Cluster, Command, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { ConnectionError } from "../../errors.js";
import { maskUrl } from "../../params.js";
import { Outage } from "../outage.js";
import { redisTarget, type RedisTarget } from "./url.js";

/** A command with no answer by then is presumed lost with its connection. */
const commandTimeoutMs = 10_000;
/** How long close() may spend saying goodbye (Backup to Recovery, heartbeat removed, QUIT) before it
 *  drops the connections: what a worker leaves behind is rescued by the others all the same. */
const goodbyeMs = 5000;
/** How long a write waits for redis_wait_replicas replicas before its call fails. */
const replicasTimeoutMs = 5000;

export type RedisClient = Redis | Cluster;

export class RedisConnection {
  /** the URL with its password masked, for messages */
  readonly location: string;
  readonly target: RedisTarget;
  readonly client: RedisClient;
  readonly subscriber: RedisClient;
  /** Counts the client's lost connections (to any node): a WAIT answered on another connection than
   *  the write it follows says nothing of that write. */
  #generation = 0;
  /** the server lost and regained, once per outage of either connection (on a cluster also of the
   *  master serving the queue's slot: see watchSlot) */
  readonly outage: Outage;
  #closing = false;

  constructor(url: string, connectionName: string) {
    const target = (this.target = redisTarget(url));
    this.location = maskUrl(url);
    const common: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 20, connectionName };
    // No auto-pipelining: the hot paths already send one script call per batch, and holding every
    // command for the next tick costs more in latency than it saves (bench/redis.js).
    const make = (options: RedisOptions): RedisClient => {
      const auth = { username: target.username, password: target.password, tls: target.tls ? {} : undefined };
      if (target.kind === "server") return new Redis(url, options);
      if (target.kind === "sentinel") {
        // A dead master closes the connection, and the reconnection asks the Sentinels for the new one.
        // A master demoted while alive answers writes with READONLY: that reconnects too, and the
        // command is sent again. (ioredis's failoverDetector would also drop a connection that has just
        // come back, and its resubscription, unanswered then, becomes an unhandled rejection.)
        const tls = target.tls ? { enableTLSForSentinelMode: true } : {};
        const reconnectOnError = (err: Error) => (err.message.startsWith("READONLY") ? 2 : false);
        return new Redis({ ...options, ...auth, ...tls, sentinels: target.nodes, name: target.masterName!, db: target.db ?? 0, reconnectOnError });
      }
      // A failover takes a few seconds (cluster-node-timeout and an election): a command is retried
      // on the new master meanwhile rather than failed after ioredis's default 1.6 s.
      const cluster: ClusterOptions = { lazyConnect: true, retryDelayOnFailover: 300, retryDelayOnClusterDown: 300, maxRedirections: 64, redisOptions: { ...options, ...auth, lazyConnect: undefined } };
      return new Cluster(target.nodes, cluster);
    };
    this.client = make({ ...common, commandTimeout: commandTimeoutMs });
    this.subscriber = make(common);
    this.outage = new Outage(this.location);
    this.watchOutages();
    const lost = () => this.#generation++;
    if (this.client instanceof Cluster) {
      this.client.on("-node", lost);
      this.client.on("node error", lost);
    } else this.client.on("close", lost);
  }

  /** A connection that closes after it was ready, other than by close(), is down until it is ready again. */
  private watchOutages(): void {
    for (const [name, connection] of [["client", this.client], ["subscriber", this.subscriber]] as const) {
      let wasReady = false;
      connection.on("ready", () => {
        wasReady = true;
        this.outage.regained(name);
      });
      connection.on("close", () => {
        if (wasReady && !this.#closing) this.outage.lost(name);
      });
    }
  }

  /** On a cluster: the connection to the master serving the queue's slot failing is an outage of the
   *  queue's server (the cluster as a whole stays up meanwhile), until a read of `key` (a key of the
   *  queue: only the slot's master answers it, others redirect there) is answered, by that master
   *  again or by the replica that took over. */
  watchSlot(key: string): void {
    const cluster = this.client;
    if (!(cluster instanceof Cluster)) return;
    const slot = slotOf(key);
    let probing = false;
    const probe = () => {
      if (this.#closing) return;
      cluster.exists(key).then(
        () => {
          probing = false;
          this.outage.regained("slot");
        },
        () => setTimeout(probe, 500).unref(),
      );
    };
    cluster.on("node error", (_err: unknown, node: string) => {
      if (probing || this.#closing || cluster.slots[slot]?.[0] !== node) return;
      probing = true;
      this.outage.lost("slot");
      setTimeout(probe, 200).unref();
    });
  }

  /** Calls `renewed` when commands may have been lost with a connection: the client reconnected (to
   *  any node of a cluster). */
  onClientRenewed(renewed: () => void): void {
    this.client.on("ready", renewed);
    if (this.client instanceof Cluster) this.client.on("-node", renewed);
  }

  /** Calls `renewed` when messages may have been missed: the subscriber reconnected (or, on a
   *  cluster, a node left, perhaps the one it listened on: it listens on another then). */
  onSubscriberRenewed(renewed: () => void): void {
    this.subscriber.on("ready", renewed);
    if (this.subscriber instanceof Cluster) this.subscriber.on("-node", renewed);
  }

  /** Holds the client's writes until this turn of the event loop ends, then sends them at once and in
   *  order (a single server only: a cluster's connections are its own). */
  holdWrites(): void {
    const client = this.client;
    if (client instanceof Cluster || !client.stream || client.stream.writableCorked > 0) return;
    const stream = client.stream;
    stream.cork();
    setImmediate(() => stream.uncork());
  }

  /** The client's lost connections so far: see confirmWrites. */
  get generation(): number {
    return this.#generation;
  }

  /** Sends WAIT right after a write (on the connection it went over, in order) and resolves once
   *  `replicas` replicas have it. Fails with a ConnectionError when the WAIT times out short of them,
   *  or when a connection was lost since `generation` (taken before the write was sent): the WAIT may
   *  then have gone over another connection, and the write may or may not survive a failover. */
  async confirmWrites(replicas: number, slot: number, generation: number): Promise<void> {
    const count = (await this.answered(this.client.sendCommand(new SlotCommand("wait", [replicas, replicasTimeoutMs], slot)) as Promise<number>));
    if (this.#generation !== generation) {
      throw new ConnectionError(`Redis at ${this.location}: the connection was lost before ${replicas} replica(s) confirmed a write`);
    }
    if (count < replicas) {
      throw new ConnectionError(`Redis at ${this.location}: a write reached ${count} of the ${replicas} replica(s) redis_wait_replicas asks for within ${replicasTimeoutMs / 1000} s`);
    }
  }

  /** PUBLISH through the node serving `slot` (on a cluster): the messages a queue publishes, by script
   *  or by command, reach subscribers from one node, in the order they were sent. */
  async publish(channel: string, message: string, slot: number): Promise<void> {
    await this.answered(this.client.sendCommand(new SlotCommand("publish", [channel, message], slot)) as Promise<number>);
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
      const { db, kind } = this.target;
      if (db !== undefined && kind === "server") await (this.client as Redis).select(db);
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
    this.#closing = true;
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

/** A command sent to the node serving `slot` of a cluster (any command goes to the one server otherwise). */
export class SlotCommand extends Command {
  constructor(
    name: string,
    args: (string | number)[],
    private readonly servingSlot: number,
  ) {
    super(name, args, { replyEncoding: "utf8" });
  }

  override getSlot(): number {
    return this.servingSlot;
  }
}

/** The cluster slot of a key (of its hash tag). */
export function slotOf(key: string): number {
  return new Command("get", [key]).getSlot();
}
