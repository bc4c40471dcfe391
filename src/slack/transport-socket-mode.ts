// Socket Mode, the transport Slack offers apps today: apps.connections.open with the app-level
// token (xapp-...) hands out a WebSocket URL; events arrive in envelopes that must be acknowledged
// within a few seconds (Slack sends unacknowledged ones again); a `disconnect` frame asks for a new
// connection.
import type WebSocket from "ws";
import { defaultTimings, ReconnectingSocket, type SlackMessageEvent, type SocketTimings } from "./transport.js";
import type { SlackWebApi } from "./web-api.js";

export class SocketModeTransport extends ReconnectingSocket {
  readonly kind = "socket-mode";

  /** @param appApi a Web API client holding the app-level token */
  constructor(private readonly appApi: SlackWebApi, timings: SocketTimings = defaultTimings) {
    super(timings);
  }

  protected async openUrl(): Promise<string> {
    const reply = await this.appApi.call<{ url: string }>("apps.connections.open");
    return reply.url;
  }

  protected onFrame(frame: Record<string, unknown>, socket: WebSocket): void {
    if (frame.type === "disconnect") {
      this.reconnect(socket, `Slack asked to reconnect (${String(frame.reason ?? "no reason")})`);
      return;
    }
    // Acknowledge first, work afterwards: Slack wants the ack within 3 seconds.
    if (typeof frame.envelope_id === "string") socket.send(JSON.stringify({ envelope_id: frame.envelope_id }));
    if (frame.type !== "events_api") return;
    const event = (frame.payload as { event?: SlackMessageEvent } | undefined)?.event;
    if (event?.type === "message") this.hooks?.onMessage(event);
  }
}
