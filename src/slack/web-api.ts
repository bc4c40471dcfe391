// The few Slack Web API methods a bot needs, over global fetch: every call is a POST with the token
// in the Authorization header and form-encoded arguments, as Slack's own clients send them.
import { SlackApiError } from "./errors.js";

export interface SlackUser {
  id: string;
  name: string;
  is_bot?: boolean;
}

export class SlackWebApi {
  private readonly base: string;

  /** @param signal aborts every call in flight and to come (the bot is stopping) */
  constructor(baseUrl: string, private readonly token: string, private readonly signal?: AbortSignal) {
    this.base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
  }

  /** Call `method`; resolves with Slack's reply when `ok`, throws SlackApiError otherwise. */
  async call<T extends object>(method: string, args: Record<string, string | undefined> = {}): Promise<T> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(args)) if (v !== undefined) body.set(k, v);
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(this.base + method, {
          method: "POST",
          headers: { authorization: `Bearer ${this.token}`, "content-type": "application/x-www-form-urlencoded" },
          body,
          signal: this.signal ? AbortSignal.any([this.signal, AbortSignal.timeout(30_000)]) : AbortSignal.timeout(30_000),
        });
      } catch (err) {
        throw new SlackApiError(method, "request_failed", `${(err as Error).message}`, { cause: err });
      }
      // Rate limited: Slack says how long to wait.
      if (response.status === 429 && attempt < 4) {
        const seconds = Number(response.headers.get("retry-after") ?? "1");
        await new Promise((resolve) => setTimeout(resolve, Math.min(Number.isFinite(seconds) ? seconds : 1, 30) * 1000).unref());
        if (this.signal?.aborted) throw new SlackApiError(method, "request_failed", "stopped");
        continue;
      }
      let reply: { ok?: boolean; error?: string } & Record<string, unknown>;
      try {
        reply = (await response.json()) as typeof reply;
      } catch (err) {
        throw new SlackApiError(method, `http_${response.status}`, "the reply is not JSON", { cause: err });
      }
      if (!reply.ok) throw new SlackApiError(method, String(reply.error ?? `http_${response.status}`));
      return reply as T;
    }
  }

  async authTest(): Promise<{ user_id: string; bot_id?: string; user?: string; team?: string }> {
    return this.call("auth.test");
  }

  async userInfo(user: string): Promise<SlackUser> {
    const reply = await this.call<{ user: SlackUser }>("users.info", { user });
    return reply.user;
  }

  async postMessage(channel: string, text: string): Promise<void> {
    await this.call("chat.postMessage", { channel, text });
  }
}
