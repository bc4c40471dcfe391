// One AMQP connection that comes back by itself: on loss it reconnects with backoff and runs every
// registered setup again (re-declare, re-consume), in order, before anyone may use it.
import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from "amqplib";
import { ConnectionError } from "../../errors.js";
import { maskUrl, queueServerUrl } from "../../params.js";
import { Outage } from "../outage.js";

/** Re-creates a part's channels on a fresh connection. Runs once per connection, in registration order. */
export type Setup = (model: ChannelModel) => Promise<void>;

export class AmqpConnection {
  /** Bumped on every new connection: leases and channels of an older generation are stale. */
  generation = 0;
  private model?: ChannelModel;
  private setups: Setup[] = [];
  private waiters: { resolve: (m: ChannelModel) => void; reject: (e: Error) => void }[] = [];
  private closed = false;
  private retry?: NodeJS.Timeout;
  private failures = 0;
  /** connections that closed: one that closes while its setups run is not adopted */
  private lost = new WeakSet<ChannelModel>();
  /** the broker lost (the connection closed) and regained (a new one adopted, its setups run) */
  readonly outage: Outage;

  private constructor(
    private readonly url: string,
    readonly location: string,
    private readonly name: string,
    private readonly onError: (err: unknown) => void,
    /** the virtual host the URL names: a refusal names it */
    private readonly vhost: string,
  ) {
    this.outage = new Outage(location);
  }

  /** Connect once; an unreachable broker or refused credentials throw ConnectionError at once,
   *  a URL that is not amqp:// or amqps:// ParameterError (a bad argument, not a broker's fault). */
  static async open(url: string, name: string, onError: (err: unknown) => void = () => {}): Promise<AmqpConnection> {
    const conn = new AmqpConnection(url, maskUrl(url), name, onError, checkAmqpUrl(url));
    try {
      const model = await conn.dial();
      conn.watch(model);
      conn.adopt(model);
    } catch (err) {
      throw new ConnectionError(`cannot connect to RabbitMQ at ${conn.location}: ${describe(err, conn.vhost)}`, { cause: err });
    }
    return conn;
  }

  /** Register a setup, run it now on the current connection, and again after every reconnect.
   *  Setups run with the connection they are given: one that waited for current() there would wait forever. */
  async addSetup(setup: Setup): Promise<void> {
    this.setups.push(setup);
    const model = await this.current();
    try {
      await setup(model);
    } catch (err) {
      if (this.model === model) throw err;
      // The connection dropped meanwhile: the reconnect runs the setup again.
    }
  }

  /** The live connection, waiting for a reconnect if there is none right now. */
  current(): Promise<ChannelModel> {
    if (this.model) return Promise.resolve(this.model);
    if (this.closed) return Promise.reject(new ConnectionError(`the connection to ${this.location} is closed`));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** As current(), but ConnectionError once `deadline` (epoch ms) passes with no connection. */
  currentBy(deadline: number): Promise<ChannelModel> {
    if (this.model || this.closed) return this.current();
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (model: ChannelModel) => (clearTimeout(timer), resolve(model)),
        reject: (err: Error) => (clearTimeout(timer), reject(err)),
      };
      const timer = setTimeout(() => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(new ConnectionError(`no connection to ${this.location}`));
      }, Math.max(0, deadline - Date.now()));
      this.waiters.push(waiter);
    });
  }

  /** A channel whose unexpected closing brings the whole connection down and back (and every setup with it). */
  async channel(model: ChannelModel, confirm: false): Promise<Channel>;
  async channel(model: ChannelModel, confirm: true): Promise<ConfirmChannel>;
  async channel(model: ChannelModel, confirm: boolean): Promise<Channel | ConfirmChannel> {
    const ch = confirm ? await model.createConfirmChannel() : await model.createChannel();
    ch.on("error", (err) => this.onError(err));
    ch.on("close", () => {
      if (!this.closed && !(ch as unknown as { expectedClose?: boolean }).expectedClose) model.close().catch(() => {});
    });
    return ch;
  }

  /** Close a channel made by channel() without bringing the connection down. */
  static async closeChannel(ch: Channel): Promise<void> {
    (ch as unknown as { expectedClose?: boolean }).expectedClose = true;
    await ch.close().catch(() => {});
  }

  /** Run `fn` on a throw-away channel: for operations whose failure closes the channel (passive checks, locks). */
  async scratch<T>(fn: (ch: Channel) => Promise<T>, on?: ChannelModel): Promise<T> {
    const model = on ?? (await this.current());
    const ch = await model.createChannel();
    let failed = false;
    ch.on("error", () => (failed = true));
    try {
      return await fn(ch);
    } finally {
      if (!failed) await ch.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    for (const w of this.waiters.splice(0)) w.reject(new ConnectionError(`the connection to ${this.location} is closed`));
    const model = this.model;
    this.model = undefined;
    await model?.close().catch(() => {});
  }

  private async dial(): Promise<ChannelModel> {
    // noDelay: a confirm or an ack waits for no other frame (Nagle would hold each small one ~40 ms).
    const model = await amqp.connect(withHeartbeat(this.url), { clientProperties: { connection_name: this.name }, timeout: 10_000, noDelay: true });
    corkEachPass(model);
    return model;
  }

  private watch(model: ChannelModel): void {
    model.on("error", (err) => this.onError(err));
    model.on("close", () => {
      this.lost.add(model);
      if (this.model !== model) return;
      this.model = undefined;
      if (this.closed) return;
      this.outage.lost("connection");
      this.reconnect();
    });
  }

  private adopt(model: ChannelModel): void {
    this.generation += 1;
    this.model = model;
    this.outage.regained("connection");
  }

  private reconnect(): void {
    const delay = Math.min(100 * 2 ** this.failures, 5000) * (0.8 + Math.random() * 0.4);
    this.retry = setTimeout(async () => {
      if (this.closed) return;
      let model: ChannelModel | undefined;
      try {
        model = await this.dial();
        this.watch(model);
        if (this.closed) return void model.close().catch(() => {});
        for (const setup of this.setups) await setup(model);
        if (this.lost.has(model)) throw new Error("the connection closed while it was being set up");
        this.adopt(model);
        this.failures = 0;
        for (const w of this.waiters.splice(0)) w.resolve(model);
      } catch (err) {
        this.failures += 1;
        this.onError(new ConnectionError(`reconnecting to ${this.location}: ${describe(err, this.vhost)}`, { cause: err }));
        // a setup failed on a live connection: drop it and start over
        await model?.close().catch(() => {});
        if (!this.closed) this.reconnect();
      }
    }, delay);
  }
}

/**
 * amqplib writes every frame to the socket by itself: under load, a syscall per ack, confirm and
 * publish. Corking the socket for each pass of its multiplexer sends what one pass wrote in one
 * writev: at 20k tasks the writes took 31% of the process's busy time, and 14% corked. It relies
 * on amqplib's internals, so it says whether it applied; a test holds it to true for the amqplib
 * version installed.
 */
export function corkEachPass(model: ChannelModel): boolean {
  const connection = (model as unknown as { connection?: { muxer?: { _readIncoming?(): void }; stream?: { cork?(): void; uncork?(): void } } }).connection;
  const muxer = connection?.muxer;
  const socket = connection?.stream;
  if (typeof muxer?._readIncoming !== "function" || typeof socket?.cork !== "function" || typeof socket.uncork !== "function") return false;
  const pass = muxer._readIncoming.bind(muxer);
  const cork = socket.cork.bind(socket);
  const uncork = socket.uncork.bind(socket);
  muxer._readIncoming = () => {
    cork();
    try {
      pass();
    } finally {
      uncork();
    }
  };
  return true;
}

/** The virtual host the URL names (`/` when it names none); ParameterError for a URL that is not AMQP. */
export function checkAmqpUrl(url: string): string {
  const parsed = queueServerUrl(url, "amqp_url", ["amqp", "amqps"]);
  return parsed.pathname.length > 1 ? decodeURIComponent(parsed.pathname.slice(1)) : "/";
}

/** Seconds between heartbeats when the URL names none (`?heartbeat=N`). A connection that hangs rather
 *  than closes (a peer gone without a word, a network path dropping packets) is found dead after two
 *  missed ones, within task()'s patience; the broker's default of 60 would hold a publish for two minutes.
 *  Like a Redis worker's 10 s heartbeat, it means a process whose event loop is blocked 20 s is dropped. */
export const defaultHeartbeat = 10;

function withHeartbeat(url: string): string {
  if (new URL(url).searchParams.has("heartbeat")) return url;
  return `${url}${url.includes("?") ? "&" : "?"}heartbeat=${defaultHeartbeat}`;
}

/** One line saying why a connection failed. */
function describe(err: unknown, vhost: string): string {
  const e = err as { code?: string | number; message?: string; errors?: { code?: string }[] };
  const code = e?.code ?? e?.errors?.[0]?.code;
  if (code === "ECONNREFUSED") return "connection refused (is RabbitMQ running there?)";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host not found";
  if (code === "ETIMEDOUT") return "timed out";
  const message = String(e?.message ?? err).split("\n")[0];
  if (/ACCESS_REFUSED|403/.test(message)) return "access refused: wrong user name or password";
  // The broker refuses connection.open only for the virtual host; amqplib keeps no more of its
  // reply than "Expected ConnectionOpenOk; got <ConnectionClose channel:0>".
  if (/NOT_ALLOWED|530|^Expected ConnectionOpenOk; got <ConnectionClose/.test(message)) {
    return `virtual host "${vhost}" not found, or the user may not use it (NOT_ALLOWED)`;
  }
  return message;
}

