// A local Slack for tests: the Web API methods a bot calls (auth.test, users.info, chat.postMessage,
// apps.connections.open, rtm.connect) over HTTP, and WebSockets that speak Socket Mode (envelopes,
// acks, retries of unacked envelopes, `disconnect` frames) and RTM (hello, ping/pong, goodbye) as
// Slack does. Like Slack, it echoes the bot's own posts back as message events.
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

export interface FakeUser {
  id: string;
  name: string;
}

export interface Posted {
  channel: string;
  text: string;
  token: string;
}

export interface ApiCall {
  method: string;
  token: string;
  params: Record<string, string>;
}

type Kind = "socket" | "rtm";

interface Live {
  kind: Kind;
  socket: WebSocket;
}

export const botUserId = "UBOT";
export const botId = "BBOT";

export class FakeSlack {
  readonly users = new Map<string, FakeUser>();
  readonly posted: Posted[] = [];
  readonly calls: ApiCall[] = [];
  /** envelope ids the client acknowledged */
  readonly acks = new Set<string>();
  /** envelope ids sent, with the attempt of their last delivery */
  readonly envelopes = new Map<string, number>();
  /** every socket ever opened, by kind */
  readonly opened: Record<Kind, number> = { socket: 0, rtm: 0 };
  /** tokens the fake accepts (a test may change them, as when a token is rotated) */
  botToken = "xoxb-fake-bot";
  appToken = "xapp-fake-app";
  /** seconds before an unacked envelope is sent again (Slack: a few seconds) */
  ackTimeoutMs = 3000;
  private live: Live[] = [];
  private readonly http: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private tsCounter = 0;
  private lastEnvelope?: { event: Record<string, unknown>; envelopeId: string; attempt: number };
  private changed = new Set<() => void>();

  private constructor() {
    this.http = http.createServer((req, res) => void this.answer(req, res));
    this.http.on("upgrade", (req, socket, head) => {
      const kind: Kind = req.url?.startsWith("/rtm") ? "rtm" : "socket";
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(kind, ws));
    });
  }

  static async start(): Promise<FakeSlack> {
    const fake = new FakeSlack();
    await new Promise<void>((resolve) => fake.http.listen(0, "127.0.0.1", resolve));
    return fake;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  /** The Web API base URL to give the bot (`slack_api_url`). */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api`;
  }

  addUser(id: string, name: string): void {
    this.users.set(id, { id, name });
  }

  /** Sockets open now, of one kind or both. */
  connected(kind?: Kind): number {
    return this.live.filter((l) => !kind || l.kind === kind).length;
  }

  /** A direct message from `user` to the bot, on every open socket (as Slack does with one connection). */
  sendDM(user: string, text: string, extra: Record<string, unknown> = {}): string {
    const ts = this.nextTs();
    this.sendEvent({ type: "message", channel: `D${user}`, channel_type: "im", user, text, ts, event_ts: ts, ...extra });
    return ts;
  }

  /** Any event, wrapped in an envelope for Socket Mode or sent as is over RTM. */
  sendEvent(event: Record<string, unknown>): void {
    for (const l of this.live) {
      if (l.kind === "rtm") {
        const { channel_type: _, event_ts: __, ...rtmEvent } = event;
        l.socket.send(JSON.stringify({ ...rtmEvent, team: "T1" }));
      } else {
        this.sendEnvelope(l.socket, event, randomUUID(), 0);
      }
    }
  }

  /** Deliver the last envelope again, as Slack does when it is unsure it arrived. */
  redeliver(): void {
    const last = this.lastEnvelope;
    if (!last) throw new Error("no envelope sent yet");
    for (const l of this.live) if (l.kind === "socket") this.sendEnvelope(l.socket, last.event, last.envelopeId, last.attempt + 1);
  }

  /** Ask clients to reconnect: `disconnect` (Socket Mode) or `goodbye` (RTM). */
  askToReconnect(): void {
    for (const l of this.live) {
      l.socket.send(JSON.stringify(l.kind === "rtm" ? { type: "goodbye" } : { type: "disconnect", reason: "refresh_requested", debug_info: { host: "fake" } }));
    }
  }

  /** Cut every socket without a closing handshake, as a network failure would. */
  dropSockets(): void {
    for (const l of this.live) l.socket.terminate();
  }

  /** Keep every socket open but stop reading from it (no pongs, no acks), as a half-open link does. */
  freezeSockets(): void {
    for (const l of this.live) (l.socket as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  /** Resolve once `check` holds, re-checked on every change; reject after `timeoutMs`. */
  async until<T>(check: () => T | undefined | false, timeoutMs = 10_000, what = "condition"): Promise<T> {
    const first = check();
    if (first) return first;
    return new Promise<T>((resolve, reject) => {
      const test = () => {
        const value = check();
        if (!value) return;
        this.changed.delete(test);
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.changed.delete(test);
        reject(new Error(`fake Slack: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.changed.add(test);
    });
  }

  /** The first post to `channel` after `from` posts had been made. */
  async nextPost(channel: string, from: number, timeoutMs = 10_000): Promise<Posted> {
    return this.until(() => this.posted.slice(from).find((p) => p.channel === channel), timeoutMs, `a post to ${channel}`);
  }

  async close(): Promise<void> {
    for (const l of this.live) l.socket.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private notify(): void {
    for (const test of [...this.changed]) test();
  }

  private nextTs(): string {
    this.tsCounter += 1;
    return `1700000000.${String(this.tsCounter).padStart(6, "0")}`;
  }

  private accept(kind: Kind, socket: WebSocket): void {
    const entry: Live = { kind, socket };
    this.live.push(entry);
    this.opened[kind] += 1;
    socket.on("close", () => {
      this.live = this.live.filter((l) => l !== entry);
      this.notify();
    });
    socket.on("error", () => {});
    socket.on("message", (data) => {
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(String(data));
      } catch {
        return;
      }
      if (typeof frame.envelope_id === "string") this.acks.add(frame.envelope_id);
      if (frame.type === "ping") socket.send(JSON.stringify({ type: "pong", reply_to: frame.id }));
      this.notify();
    });
    socket.send(
      JSON.stringify(
        kind === "rtm"
          ? { type: "hello" }
          : { type: "hello", num_connections: 1, connection_info: { app_id: "A1" }, debug_info: { host: "fake", approximate_connection_time: 3600 } },
      ),
    );
    this.notify();
  }

  private sendEnvelope(socket: WebSocket, event: Record<string, unknown>, envelopeId: string, attempt: number): void {
    if (socket.readyState !== socket.OPEN) return;
    this.envelopes.set(envelopeId, attempt);
    this.lastEnvelope = { event, envelopeId, attempt };
    socket.send(
      JSON.stringify({
        envelope_id: envelopeId,
        type: "events_api",
        accepts_response_payload: false,
        retry_attempt: attempt,
        retry_reason: attempt > 0 ? "timeout" : "",
        payload: {
          type: "event_callback",
          team_id: "T1",
          api_app_id: "A1",
          event_id: `Ev${envelopeId.slice(0, 8)}`,
          event_time: Math.floor(Date.now() / 1000),
          event,
        },
      }),
    );
    // Slack sends an envelope again when it is not acknowledged in time.
    setTimeout(() => {
      if (!this.acks.has(envelopeId) && attempt < 3) this.sendEnvelope(socket, event, envelopeId, attempt + 1);
    }, this.ackTimeoutMs).unref();
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const params: Record<string, string> = {};
    if ((req.headers["content-type"] ?? "").includes("application/json")) Object.assign(params, body ? JSON.parse(body) : {});
    else for (const [k, v] of new URLSearchParams(body)) params[k] = v;
    const url = new URL(req.url ?? "/", "http://x");
    for (const [k, v] of url.searchParams) params[k] ??= v;
    const method = url.pathname.replace(/^\/api\//, "");
    const token = (req.headers.authorization ?? "").replace(/^Bearer /, "") || params.token || "";
    this.calls.push({ method, token, params });
    const reply = this.method(method, token, params);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(reply));
    this.notify();
  }

  private method(method: string, token: string, params: Record<string, string>): Record<string, unknown> {
    if (method === "apps.connections.open") {
      if (token !== this.appToken) return { ok: false, error: "invalid_auth" };
      return { ok: true, url: `ws://127.0.0.1:${this.port}/link/?ticket=${randomUUID()}&app_id=A1` };
    }
    if (token !== this.botToken) return { ok: false, error: "invalid_auth" };
    switch (method) {
      case "auth.test":
        return { ok: true, url: "https://test.slack.com/", team: "Test", user: "taskbot", team_id: "T1", user_id: botUserId, bot_id: botId };
      case "rtm.connect":
        return {
          ok: true,
          url: `ws://127.0.0.1:${this.port}/rtm?ticket=${randomUUID()}`,
          self: { id: botUserId, name: "taskbot" },
          team: { id: "T1", name: "Test", domain: "test" },
        };
      case "users.info": {
        const user = this.users.get(params.user);
        if (!user) return { ok: false, error: "user_not_found" };
        return {
          ok: true,
          user: { id: user.id, team_id: "T1", name: user.name, real_name: user.name, is_bot: false, profile: { display_name: "", real_name: user.name } },
        };
      }
      case "chat.postMessage": {
        if (!params.channel) return { ok: false, error: "channel_not_found" };
        if (!params.text) return { ok: false, error: "no_text" };
        const ts = this.nextTs();
        this.posted.push({ channel: params.channel, text: params.text, token });
        // Slack sends the bot's own message back to it as an event.
        setImmediate(() =>
          this.sendEvent({ type: "message", channel: params.channel, channel_type: "im", user: botUserId, bot_id: botId, text: params.text, ts, event_ts: ts }),
        );
        return { ok: true, channel: params.channel, ts, message: { type: "message", user: botUserId, bot_id: botId, text: params.text, ts } };
      }
      default:
        return { ok: false, error: "unknown_method" };
    }
  }
}
