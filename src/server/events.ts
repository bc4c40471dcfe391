// GET /events: one live stream per browser tab, as Server-Sent Events. One hub per server takes
// the queue's events once (task events of every process, debug lines, job changes, a stats tick) and
// fans them out to every client. Events are kept in a bounded ring, and the ring is the only buffer:
// a client whose connection is full is written no more (Node holds at most one frame past its
// high-water mark for it) and, once its connection drains, catches up from the ring, as a client
// reconnecting with Last-Event-ID does. Events that leave the ring before a slow client read them are
// counted, and it is told how many it missed (`dropped`); one resuming from an id the ring no longer
// holds is told to start over (`reset`). The server never holds more for a client that does not read.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TaskEvent } from "../backend.js";
import type { JobShell } from "../jobshell.js";
import { TaskHistory } from "./history.js";
import { HttpError, type Route } from "./http.js";

export const eventTypes = ["task", "debug", "jobs", "transaction", "stats"] as const;
export type EventType = (typeof eventTypes)[number];

export interface EventsOptions {
  /** the `: heartbeat` comment's interval (default 15 s) */
  heartbeatMs?: number;
  /** events kept for catching up and for Last-Event-ID (default 10,000) */
  ringSize?: number;
  /** the `stats` tick and the check for changed jobs (default 1 s) */
  tickMs?: number;
}

/** Bytes the ring may hold in all: past this its oldest events go, however few they are. */
const ringBytes = 32 * 1024 * 1024;
/** Frames batched for one client past this many characters are written at once. */
const batchChars = 64 * 1024;
/** A debug line longer than this is cut (with `truncated: true`): the stream is for watching, not for data. */
const debugLineChars = 16 * 1024;

/** An event kept: its frame is written out when a client first needs it, so that a server nobody
 *  watches spends next to nothing per task. */
interface Stored {
  id: number;
  type: EventType;
  topic?: string;
  data: unknown;
  /** what it counts against the ring's bytes: the size of its data, estimated */
  size: number;
  frame?: string;
}

function frameOfStored(stored: Stored): string {
  return (stored.frame ??= `id: ${stored.id}\nevent: ${stored.type}\ndata: ${JSON.stringify(stored.data)}\n\n`);
}

class Client {
  /** the id of the last event written to it (or the Last-Event-ID it resumes from) */
  cursor = 0;
  /** its connection is full, or it is catching up from the ring: live events are not written to it */
  behind = false;
  /** events it wanted that left the ring before it read them */
  missed = 0;

  constructor(
    readonly res: ServerResponse,
    readonly types: ReadonlySet<EventType>,
    readonly topic: string | undefined,
  ) {}

  wants(event: { type: EventType; topic?: string }): boolean {
    if (!this.types.has(event.type)) return false;
    return this.topic === undefined || event.type !== "task" || event.topic === this.topic;
  }

  /** Write, batched: frames of one turn of the event loop go out in one write (one chunk, one
   *  system call), or at once past 64 KiB. False once the connection is full (the frame is still sent). */
  write(frame: string, id?: number): boolean {
    if (id !== undefined) this.cursor = id;
    this.#pending += frame;
    if (this.#pending.length >= batchChars) return this.flush();
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        if (!this.flush()) this.onFull();
      });
    }
    return true;
  }

  /** Write what is batched; false once the connection is full. */
  flush(): boolean {
    if (this.#pending === "" || this.res.destroyed) return !this.res.writableNeedDrain;
    const text = this.#pending;
    this.#pending = "";
    return this.res.write(text);
  }

  /** End the stream after what is batched. */
  end(): void {
    const text = this.#pending;
    this.#pending = "";
    this.res.end(text);
  }

  /** Told when a batched write found the connection full (set by the hub). */
  onFull: () => void = () => {};
  /** a 'drain' is awaited */
  draining = false;
  #pending = "";
  #scheduled = false;
}

export class EventHub {
  readonly history = new TaskHistory();
  readonly #js: JobShell;
  readonly #options: Required<EventsOptions>;
  /** the events kept, oldest first from #head (those before it are gone) */
  readonly #ring: Stored[] = [];
  #head = 0;
  #ringBytes = 0;
  /** ids start at the clock, so that an id from before a restart is older than every new one */
  #nextId = Date.now();
  readonly #firstId = this.#nextId;
  /** the newest id that left the ring: a client that read no later one has a gap */
  #lostUpTo = 0;
  readonly #clients = new Set<Client>();
  readonly #stops: (() => Promise<void>)[] = [];
  #debug?: Promise<void>;
  #jobs: string;
  readonly #timers: NodeJS.Timeout[] = [];
  /** the xid of recent Transaction.* tasks, read once per task */
  readonly #xids = new Map<string, Promise<{ xid?: string; xname?: string }>>();
  #transactionChain: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(js: JobShell, options: EventsOptions) {
    this.#js = js;
    this.#options = { heartbeatMs: 15_000, ringSize: 10_000, tickMs: 1000, ...options };
    this.#jobs = this.#jobsSignature();
  }

  /** A hub taking the queue's task events from now on. */
  static async start(js: JobShell, options: EventsOptions = {}): Promise<EventHub> {
    const hub = new EventHub(js, options);
    hub.#stops.push(await js.onTask((event) => hub.#onTask(event)));
    hub.#timers.push(
      setInterval(() => hub.#tick(), hub.#options.tickMs).unref(),
      setInterval(() => hub.#heartbeat(), hub.#options.heartbeatMs).unref(),
    );
    return hub;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Send an event to every client that wants it, keeping it in the ring unless `keep` is false
   *  (a stats tick: the next one replaces it, so a client behind skips it). */
  publish(type: EventType, data: unknown, topic?: string, keep = true, size = 256): void {
    if (this.#closed) return;
    const stored: Stored = { id: this.#nextId++, type, topic, data, size };
    if (keep) this.#keep(stored);
    for (const client of this.#clients) {
      if (client.behind || !client.wants(stored)) continue;
      if (!client.write(frameOfStored(stored), stored.id)) this.#fellBehind(client);
    }
  }

  /** Answer GET /events: the stream for this client, from its Last-Event-ID if it gives one. */
  async attach(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    const { types, topic, lastId } = streamQuery(req, query);
    if (this.#closed) throw new HttpError("closing", "the server is shutting down; ask again", {}, { connection: "close" });
    if (types.has("debug")) await this.#startDebug();
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    if (req.method === "HEAD") return void res.end();
    res.socket?.setNoDelay(true);
    const client = new Client(res, types, topic);
    client.onFull = () => this.#fellBehind(client);
    this.#clients.add(client);
    res.on("close", () => this.#clients.delete(client));
    client.write("retry: 1000\n\n");
    const newest = this.#nextId - 1;
    client.cursor = newest;
    if (lastId === undefined || lastId === newest) return;
    if (lastId < this.#lostUpTo || lastId < this.#firstId - 1 || lastId > newest) {
      const why = lastId < this.#firstId - 1 || lastId > newest ? "from before this server started" : "older than the events kept";
      client.write(frameOf("reset", { lastEventId: lastId, reason: `Last-Event-ID ${lastId} is ${why}: load the views again` }));
      return;
    }
    client.cursor = lastId;
    client.behind = true;
    this.#catchUp(client);
  }

  /** End every stream and stop taking events. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    for (const client of this.#clients) client.end();
    this.#clients.clear();
    await this.#debug?.catch(() => {});
    await Promise.all(this.#stops.map((stop) => stop().catch(() => {})));
  }

  #fellBehind(client: Client): void {
    client.behind = true;
    if (client.draining) return;
    client.draining = true;
    client.res.once("drain", () => {
      client.draining = false;
      this.#catchUp(client);
    });
  }

  /** Write the client what the ring holds after its cursor, until its connection is full again or
   *  it has caught up; a gap first tells how many events it missed. */
  #catchUp(client: Client): void {
    if (client.res.destroyed || this.#closed) return;
    if (client.missed > 0) {
      const count = client.missed;
      client.missed = 0;
      if (!client.write(frameOf("dropped", { count, after: client.cursor }))) return this.#fellBehind(client);
    }
    for (let i = this.#after(client.cursor); i < this.#ring.length; i++) {
      const stored = this.#ring[i];
      if (!client.wants(stored)) continue;
      if (!client.write(frameOfStored(stored), stored.id)) return this.#fellBehind(client);
    }
    client.behind = false;
  }

  /** The ring index of the first event kept with an id after `id`. */
  #after(id: number): number {
    let low = this.#head;
    let high = this.#ring.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#ring[mid].id <= id) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  #keep(stored: Stored): void {
    this.#ring.push(stored);
    this.#ringBytes += stored.size;
    // Past either bound the oldest events go (the bytes bound only for huge events).
    while (this.#ring.length - this.#head > this.#options.ringSize || (this.#ringBytes > ringBytes && this.#ring.length - this.#head > 1)) {
      const oldest = this.#ring[this.#head++];
      this.#lostUpTo = oldest.id;
      this.#ringBytes -= oldest.size;
      for (const client of this.#clients) if (client.behind && client.cursor < oldest.id && client.wants(oldest)) client.missed += 1;
    }
    // The array lets go of what it no longer holds now and then, not at every event.
    if (this.#head > this.#options.ringSize) {
      this.#ring.splice(0, this.#head);
      this.#head = 0;
    }
  }

  #onTask(event: TaskEvent): void {
    this.history.add(event);
    this.publish("task", event, event.topic);
    if (event.topic.startsWith("Transaction.")) this.#transactionEvent(event);
  }

  /** A task event on a Transaction.* topic, also as a `transaction` event with the transaction's xid
   *  (read from the task's content once per task); in the order the task events came. */
  #transactionEvent(event: TaskEvent): void {
    let names = this.#xids.get(event.taskid);
    if (!names) {
      names = this.#js.record(event.taskid).then(
        (record) => {
          const content = (record?.content ?? {}) as Record<string, unknown>;
          return { xid: stringOr(content.xid), xname: stringOr(content.xname) };
        },
        () => ({}),
      );
      this.#xids.set(event.taskid, names);
      if (this.#xids.size > 1000) this.#xids.delete(this.#xids.keys().next().value!);
    }
    const read = names;
    this.#transactionChain = this.#transactionChain.then(async () => {
      const { xid, xname } = await read;
      const transaction = event.topic.slice("Transaction.".length);
      this.publish("transaction", { ...event, transaction, ...(xid && { xid }), ...(xname && { xname }) }, event.topic);
    });
  }

  #startDebug(): Promise<void> {
    this.#debug ??= this.#js
      .onDebug((line) => {
        const truncated = line.length > debugLineChars;
        const shown = truncated ? line.slice(0, debugLineChars) : line;
        this.publish("debug", truncated ? { line: shown, truncated } : { line }, undefined, true, 64 + shown.length);
      })
      .then(
        (stop) => void this.#stops.push(stop),
        (err: unknown) => {
          // the next client tries again
          this.#debug = undefined;
          throw err;
        },
      );
    return this.#debug;
  }

  #tick(): void {
    const jobs = this.#jobsSignature();
    if (jobs !== this.#jobs) {
      this.#jobs = jobs;
      this.publish("jobs", { jobs: JSON.parse(jobs) });
    }
    if (this.#clients.size === 0) return;
    this.#js.stats().then(
      (stats) => this.publish("stats", stats, undefined, false),
      () => {},
    );
  }

  #heartbeat(): void {
    for (const client of this.#clients) if (!client.behind && !client.write(": heartbeat\n\n")) this.#fellBehind(client);
  }

  #jobsSignature(): string {
    return JSON.stringify(this.#js.jobs().map((d) => ({ name: d.name, topics: d.topics })));
  }
}

/** GET /events, served by the server's one hub. */
export function eventRoutes(hub: EventHub): Route[] {
  return [{ path: /^\/events$/, methods: { GET: (req, res, _params, query) => hub.attach(req, res, query) } }];
}

function frameOf(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

function stringOr(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

const streamFields = ["types", "topic", "lastEventId"];

/** The stream's filters and where it resumes, from the query and the Last-Event-ID header. */
function streamQuery(req: IncomingMessage, query: URLSearchParams): { types: Set<EventType>; topic?: string; lastId?: number } {
  for (const key of query.keys()) {
    if (!streamFields.includes(key)) throw new HttpError("invalid_query", `unknown query parameter ${JSON.stringify(key)} (known: ${streamFields.join(", ")})`);
  }
  const types = new Set<EventType>();
  const listed = query.get("types");
  if (listed === null || listed === "") for (const t of eventTypes) types.add(t);
  else {
    for (const word of listed.split(",").map((t) => t.trim())) {
      if (!(eventTypes as readonly string[]).includes(word)) {
        throw new HttpError("invalid_query", `types lists unknown event type ${JSON.stringify(word)} (types: ${eventTypes.join(", ")})`);
      }
      types.add(word as EventType);
    }
  }
  const topic = query.get("topic") || undefined;
  const fromQuery = query.get("lastEventId");
  const raw = fromQuery ?? req.headers["last-event-id"];
  let lastId: number | undefined;
  if (typeof raw === "string" && raw !== "") {
    if (!/^\d{1,16}$/.test(raw)) throw new HttpError("invalid_query", `Last-Event-ID must be an event's id (a whole number), got ${JSON.stringify(raw.slice(0, 40))}`);
    lastId = Number(raw);
  }
  return { types, topic, lastId };
}
