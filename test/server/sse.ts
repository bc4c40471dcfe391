// A Server-Sent Events client for the tests, over a raw socket: it parses the stream as a browser's
// EventSource does (id, event, data, comments), and can stop reading to play a client that falls behind.
import { connect, type Socket } from "node:net";

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  /** the `retry:` fields received */
  readonly retries: string[] = [];
  status = 0;
  headers = "";
  ended = false;
  #buffer = "";
  #headDone = false;
  #waiters = new Set<() => void>();
  readonly #socket: Socket;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => this.#take(chunk));
    socket.on("close", () => {
      this.ended = true;
      this.#wake();
    });
    socket.on("error", () => {});
  }

  /** GET `path` from the server at `base` (http://host:port), with extra request headers. */
  static open(base: string, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const url = new URL(base);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        const lines = [`GET ${path} HTTP/1.1`, `Host: ${url.host}`, "Accept: text/event-stream", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
        socket.write(`${lines.join("\r\n")}\r\n\r\n`);
        resolve(new SseClient(socket));
      });
      socket.once("error", reject);
    });
  }

  /** Stop reading: what the server sends piles up in the socket buffers. */
  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  close(): void {
    this.#socket.destroy();
  }

  /** The JSON of the events of `type` received so far. */
  data(type: string): any[] {
    return this.events.filter((e) => e.event === type).map((e) => JSON.parse(e.data));
  }

  /** Wait until `check` holds (checked at every chunk received), or fail after `ms`. */
  async until(check: () => boolean, ms = 5000, what = "the awaited events"): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (this.ended && !check()) throw new Error(`the stream ended before ${what}; got ${this.events.length} events`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${this.events.map((e) => e.event).join(",")}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 200));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.add(done);
      });
    }
  }

  #wake(): void {
    for (const w of this.#waiters) w();
    this.#waiters.clear();
  }

  #take(chunk: Buffer): void {
    this.#raw = Buffer.concat([this.#raw, chunk]);
    if (!this.#headDone) {
      const end = this.#raw.indexOf("\r\n\r\n");
      if (end < 0) return;
      this.headers = this.#raw.subarray(0, end).toString("latin1");
      this.status = Number(/^HTTP\/1\.1 (\d+)/.exec(this.headers)?.[1]);
      this.#raw = this.#raw.subarray(end + 4);
      this.#headDone = true;
      this.#chunked = /^transfer-encoding: chunked/im.test(this.headers);
    }
    if (!this.#chunked) {
      this.#text += this.#raw.toString("utf8");
      this.#raw = Buffer.alloc(0);
    }
    // A chunked body: take whole chunks, without their size lines.
    while (this.#chunked) {
      const eol = this.#raw.indexOf("\r\n");
      if (eol < 0) break;
      const size = parseInt(this.#raw.subarray(0, eol).toString("latin1"), 16);
      if (Number.isNaN(size)) throw new Error(`not a chunk size: ${JSON.stringify(this.#raw.subarray(0, 40).toString())}`);
      if (this.#raw.length < eol + 2 + size + 2) break;
      this.#text += this.#raw.subarray(eol + 2, eol + 2 + size).toString("utf8");
      this.#raw = this.#raw.subarray(eol + 2 + size + 2);
      if (size === 0) this.ended = true;
    }
    this.#parse();
    this.#wake();
  }

  #raw = Buffer.alloc(0);
  #chunked = false;
  #text = "";

  #parse(): void {
    for (;;) {
      const end = this.#text.indexOf("\n\n");
      if (end < 0) return;
      const block = this.#text.slice(0, end);
      this.#text = this.#text.slice(end + 2);
      const event: SseEvent = { event: "message", data: "" };
      let hasData = false;
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) this.comments.push(line.slice(1).trim());
        else if (line.startsWith("id: ")) event.id = line.slice(4);
        else if (line.startsWith("event: ")) event.event = line.slice(7);
        else if (line.startsWith("data: ")) {
          event.data += line.slice(6);
          hasData = true;
        } else if (line.startsWith("retry: ")) this.retries.push(line.slice(7));
      }
      if (hasData) this.events.push(event);
    }
  }
}
