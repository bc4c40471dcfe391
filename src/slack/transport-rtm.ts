// RTM, kept for classic-app bot tokens (new apps cannot use it): rtm.connect hands out a WebSocket
// URL; events arrive as plain frames; `goodbye` announces that the server will close. Besides the
// protocol pings, an app-level `ping` is answered by a `pong`, which keeps intermediaries that only
// see text frames from closing an idle link.
import type WebSocket from "ws";
import { defaultTimings, ReconnectingSocket, type SlackMessageEvent, type SocketTimings } from "./transport.js";
import type { SlackWebApi } from "./web-api.js";

export class RtmTransport extends ReconnectingSocket {
  readonly kind = "rtm";
  private nextId = 1;

  constructor(private readonly api: SlackWebApi, timings: SocketTimings = defaultTimings) {
    super(timings);
  }

  protected async openUrl(): Promise<string> {
    const reply = await this.api.call<{ url: string }>("rtm.connect");
    return reply.url;
  }

  protected onFrame(frame: Record<string, unknown>, socket: WebSocket): void {
    if (frame.type === "goodbye" || frame.type === "team_migration_started") {
      this.reconnect(socket, `Slack said ${String(frame.type)}`);
      return;
    }
    if (frame.type === "message" && frame.reply_to === undefined) {
      const event = frame as unknown as SlackMessageEvent;
      // RTM has no channel_type: direct-message channel ids start with D.
      this.hooks?.onMessage({ ...event, channel_type: event.channel?.startsWith("D") ? "im" : "channel" });
    }
  }

  /** A protocol ping and an app-level one, which Slack answers with a `pong` frame. */
  protected override sendPing(socket: WebSocket): void {
    super.sendPing(socket);
    socket.send(JSON.stringify({ id: this.nextId++, type: "ping" }));
  }
}
