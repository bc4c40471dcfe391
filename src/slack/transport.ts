// What both Slack transports share: a WebSocket that is opened from a URL the Web API hands out,
// waits for Slack's `hello`, is kept alive with protocol pings, and is opened again (with a fresh URL)
// whenever Slack asks or the connection drops, until stop().
import WebSocket from "ws";

/** A message event as both transports deliver it. */
export interface SlackMessageEvent {
  type: "message";
  channel: string;
  user?: string;
  text?: string;
  ts: string;
  subtype?: string;
  bot_id?: string;
  /** `im` for a direct message (Socket Mode; RTM tells by a channel id starting with `D`) */
  channel_type?: string;
}

export type TransportStatus = "connecting" | "connected" | "reconnecting" | "stopped";

export interface TransportHooks {
  onMessage: (event: SlackMessageEvent) => void;
  onStatus?: (status: TransportStatus, detail?: string) => void;
}

export interface SlackTransport {
  readonly kind: "socket-mode" | "rtm";
  /** Resolves once the first connection said hello; rejects if Slack refuses the tokens. */
  start(hooks: TransportHooks): Promise<void>;
  stop(): Promise<void>;
}

export interface SocketTimings {
  /** milliseconds to wait for `hello` after the socket opens */
  helloTimeoutMs: number;
  /** milliseconds between keep-alive pings; no answer by the next ping means the link is dead */
  pingIntervalMs: number;
  /** longest pause between reconnect attempts */
  maxBackoffMs: number;
}

export const defaultTimings: SocketTimings = { helloTimeoutMs: 10_000, pingIntervalMs: 10_000, maxBackoffMs: 30_000 };

/** Errors that retrying cannot cure: the token is wrong or revoked. */
const fatalErrors = new Set(["invalid_auth", "not_authed", "account_inactive", "token_revoked", "user_removed_from_team", "team_disabled", "not_allowed_token_type", "missing_scope"]);

export function isFatalSlackError(err: unknown): boolean {
  return fatalErrors.has((err as { error?: string })?.error ?? "");
}

export abstract class ReconnectingSocket implements SlackTransport {
  abstract readonly kind: "socket-mode" | "rtm";
  protected hooks?: TransportHooks;
  private socket?: WebSocket;
  private stopped = false;
  private failures = 0;
  private retryTimer?: NodeJS.Timeout;
  private wakeRetry?: () => void;

  constructor(protected readonly timings: SocketTimings = defaultTimings) {}

  /** A fresh WebSocket URL from the Web API (apps.connections.open or rtm.connect). */
  protected abstract openUrl(): Promise<string>;
  /** One text frame from Slack, other than `hello`. */
  protected abstract onFrame(frame: Record<string, unknown>, socket: WebSocket): void;

  async start(hooks: TransportHooks): Promise<void> {
    this.hooks = hooks;
    this.stopped = false;
    hooks.onStatus?.("connecting");
    await this.connect();
    void this.keepConnected();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    const socket = this.socket;
    this.socket = undefined;
    if (socket && socket.readyState !== WebSocket.CLOSED) {
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.close(1000);
      // A peer that does not answer the close handshake is cut.
      const cut = setTimeout(() => socket.terminate(), 2000);
      await closed;
      clearTimeout(cut);
    }
    this.hooks?.onStatus?.("stopped");
  }

  /** Close this connection and open a new one (Slack asked, or the link looks dead). */
  protected reconnect(socket: WebSocket, why: string): void {
    if (this.socket !== socket) return;
    this.hooks?.onStatus?.("reconnecting", why);
    socket.terminate();
  }

  /** Open one connection and resolve once Slack said hello. */
  private async connect(): Promise<void> {
    const url = await this.openUrl();
    const socket = new WebSocket(url, { handshakeTimeout: this.timings.helloTimeoutMs });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error("no hello from Slack in time")), this.timings.helloTimeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.terminate();
        reject(err);
      };
      socket.once("error", fail);
      socket.once("close", () => fail(new Error("the socket closed before hello")));
      socket.on("message", (data) => {
        let frame: Record<string, unknown>;
        try {
          frame = JSON.parse(String(data));
        } catch {
          return;
        }
        if (frame.type === "hello") {
          clearTimeout(timer);
          socket.removeAllListeners("error");
          socket.removeAllListeners("close");
          socket.on("error", () => {});
          this.failures = 0;
          this.hooks?.onStatus?.("connected");
          resolve();
          return;
        }
        this.onFrame(frame, socket);
      });
    });
    this.keepAlive(socket);
  }

  /** Protocol pings: a link that answers none within a ping interval is treated as dropped. */
  private keepAlive(socket: WebSocket): void {
    let answered = true;
    socket.on("pong", () => (answered = true));
    const timer = setInterval(() => {
      if (!answered) return this.reconnect(socket, "no pong");
      answered = false;
      this.sendPing(socket);
    }, this.timings.pingIntervalMs);
    socket.once("close", () => clearInterval(timer));
  }

  protected sendPing(socket: WebSocket): void {
    socket.ping();
  }

  /** Each time the socket closes, open a new one, backing off while Slack cannot be reached. */
  private async keepConnected(): Promise<void> {
    while (!this.stopped) {
      const socket = this.socket;
      if (socket && socket.readyState !== WebSocket.CLOSED) await new Promise<void>((resolve) => socket.once("close", () => resolve()));
      if (this.stopped) return;
      this.hooks?.onStatus?.("reconnecting", "the connection closed");
      for (;;) {
        if (this.stopped) return;
        try {
          await this.connect();
          break;
        } catch (err) {
          if (this.stopped) return;
          this.failures += 1;
          this.hooks?.onStatus?.("reconnecting", (err as Error).message);
          const ms = isFatalSlackError(err) ? this.timings.maxBackoffMs : Math.min(250 * 2 ** this.failures, this.timings.maxBackoffMs);
          await new Promise<void>((resolve) => {
            this.wakeRetry = resolve;
            this.retryTimer = setTimeout(resolve, ms).unref();
          });
        }
      }
    }
  }
}
