// One Slack job's bot: direct messages from the users named in the job's topics become tasks for
// that job alone, and what the job returns is posted back to the conversation.
import type { LogLevel, LogSink } from "../builtins.js";
import type { JobDefinition } from "../definitions.js";
import type { TaskRecordData } from "../record.js";
import { CodeRefusedError, SlackApiError } from "./errors.js";
import { checkCode, normaliseCode, refusalText } from "./injection.js";
import { cutText, errorText, valueText } from "./reply.js";
import { resolveTokens } from "./tokens.js";
import { RtmTransport } from "./transport-rtm.js";
import { SocketModeTransport } from "./transport-socket-mode.js";
import type { SlackMessageEvent, SlackTransport, SocketTimings } from "./transport.js";
import { SlackWebApi } from "./web-api.js";

export interface BotHost {
  /** Issue a task that only `job` runs; resolves with its taskid. */
  issue(job: string, topic: string, content: Record<string, unknown>, expire: number): Promise<string>;
  /** The task's record once it has ended, or the latest one after `timeoutMs`. */
  waitEnded(taskid: string, timeoutMs: number, signal: AbortSignal): Promise<TaskRecordData | undefined>;
  log: LogSink;
  /** slack_api_url */
  apiUrl: string;
  /** job_script_timeout, seconds: how long a reply may take to come */
  scriptTimeout: number;
  env?: Record<string, string | undefined>;
  timings?: SocketTimings;
}

/** Seconds a direct message may wait for a worker before its task expires. */
export const slackTaskExpire = 60;
/** How long a user id's name is remembered. */
const userCacheMs = 10 * 60_000;
/** Message timestamps remembered to drop deliveries Slack repeats (retries, reconnects). */
const seenLimit = 1000;

export class SlackBot {
  private api?: SlackWebApi;
  private transport?: SlackTransport;
  private selfId?: string;
  private readonly users = new Map<string, { name: Promise<string | undefined>; at: number }>();
  private readonly seen = new Set<string>();
  /** aborted when the bot closes: no more connecting */
  private readonly closing = new AbortController();
  /** aborted when the bot has stopped: no more waiting for replies */
  private readonly stopping = new AbortController();
  private readonly handling = new Set<Promise<void>>();

  constructor(private definition: JobDefinition, private readonly host: BotHost) {}

  get name(): string {
    return this.definition.name;
  }

  /** The transport in use once started. */
  get kind(): SlackTransport["kind"] | undefined {
    return this.transport?.kind;
  }

  /** Take a changed definition that keeps the same tokens (new topics, say) without reconnecting. */
  update(definition: JobDefinition): void {
    this.definition = definition;
  }

  /** Resolve the tokens, learn who the bot is, and connect: Socket Mode with an app token, RTM otherwise. */
  async start(): Promise<void> {
    const tokens = resolveTokens(this.definition, this.host.env);
    // Connecting is given up as soon as the bot closes; replies are given up only once it stops.
    const connecting = this.closing.signal;
    this.api = new SlackWebApi(this.host.apiUrl, tokens.token, this.stopping.signal);
    const botApi = new SlackWebApi(this.host.apiUrl, tokens.token, connecting);
    const self = await botApi.authTest();
    connecting.throwIfAborted();
    this.selfId = self.user_id;
    this.transport = tokens.appToken
      ? new SocketModeTransport(new SlackWebApi(this.host.apiUrl, tokens.appToken, connecting), this.host.timings)
      : new RtmTransport(botApi, this.host.timings);
    await this.transport.start({
      onMessage: (event) => this.onMessage(event),
      onStatus: (status, detail) => {
        if (status === "reconnecting") this.log("warning", `Slack connection lost (${detail ?? "closed"}); reconnecting`);
        else if (status === "connected") this.log("info", `connected to Slack (${this.transport?.kind})`);
      },
    });
  }

  /**
   * Disconnect, so that no new message arrives, then give the messages being worked on up to
   * `graceMs` to be answered (their tasks are running in a worker that is still up).
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.closing.abort();
    await this.transport?.stop();
    if (this.handling.size > 0 && graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.handling]), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    this.stopping.abort();
    await Promise.allSettled([...this.handling]);
  }

  private onMessage(event: SlackMessageEvent): void {
    // Edits, deletions and bot posts carry a subtype or a bot_id; the bot's own posts come back too.
    if (event.subtype || event.bot_id || !event.user || event.user === this.selfId) return;
    if (event.channel_type !== "im" || typeof event.text !== "string") return;
    const message = { ...event, user: event.user, text: event.text };
    const key = `${event.channel}/${event.ts}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > seenLimit) this.seen.delete(this.seen.values().next().value as string);
    const handling = this.handle(message).catch((err) => this.log("error", `direct message ${event.ts}: ${(err as Error).message}`));
    this.handling.add(handling);
    void handling.finally(() => this.handling.delete(handling));
  }

  private async handle(event: SlackMessageEvent & { user: string; text: string }): Promise<void> {
    const name = await this.userName(event.user);
    const topics = this.definition.topics;
    const allowed = (name !== undefined && topics.includes(name)) || topics.includes(event.user);
    // The user name whether the sender was allowed by name or by id (the id when Slack gave no name).
    const topic = name ?? event.user;
    if (!allowed) {
      this.log("info", `ignored a direct message from ${event.user}${name ? ` (${name})` : ""}: not in the job's topics`);
      return;
    }
    if (this.definition.slack?.code_injection) {
      try {
        checkCode(normaliseCode(event.text));
      } catch (err) {
        if (!(err instanceof CodeRefusedError)) throw err;
        await this.post(event.channel, refusalText(err));
        return;
      }
    }
    if (this.closing.signal.aborted) {
      this.log("warning", `did not run direct message ${event.ts} from ${topic}: the bot is stopping`);
      return;
    }
    const content = { text: event.text, user: event.user, channel: event.channel, ts: event.ts };
    let taskid: string;
    try {
      taskid = await this.host.issue(this.definition.name, topic, content, slackTaskExpire);
    } catch (err) {
      await this.post(event.channel, errorText(`the task could not be queued: ${(err as Error).message}`));
      throw err;
    }
    const waitMs = (slackTaskExpire + this.host.scriptTimeout + 10) * 1000;
    const record = await this.host.waitEnded(taskid, waitMs, this.stopping.signal);
    if (this.stopping.signal.aborted) return;
    const reply = replyFor(record, this.definition.name);
    if (reply !== undefined) await this.post(event.channel, reply);
  }

  private async post(channel: string, text: string): Promise<void> {
    await this.api!.postMessage(channel, cutText(text));
  }

  /** users.info, remembered for a while (also when the user is unknown). */
  private userName(user: string): Promise<string | undefined> {
    const cached = this.users.get(user);
    if (cached && Date.now() - cached.at < userCacheMs) return cached.name;
    const name = this.api!.userInfo(user).then(
      (u) => u.name,
      (err) => {
        // An unknown user is remembered as such; any other failure is tried again next time.
        if (err instanceof SlackApiError && err.error === "user_not_found") return undefined;
        this.users.delete(user);
        throw err;
      },
    );
    this.users.set(user, { name, at: Date.now() });
    return name;
  }

  private log(level: LogLevel, message: string): void {
    this.host.log({ level, message: `slack: ${message}`, job: this.definition.name });
  }
}

/** The message a finished task gets, or undefined when there is nothing to say. */
export function replyFor(record: TaskRecordData | undefined, job: string): string | undefined {
  if (!record) return errorText("the task's record is gone");
  const result = record.results.find((r) => r.job === job);
  switch (record.status) {
    case "completed":
      return result?.value === undefined ? undefined : valueText(result.value);
    case "failed":
      return errorText(result?.error ?? record.warning ?? "the job failed");
    case "expired":
      return errorText(`no worker started the task within ${record.expire} s`);
    default:
      return errorText(`no answer yet (task ${record.taskid} is ${record.status}); gave up waiting`);
  }
}
