// The Slack bots of a worker process: one per Slack job, started when the job appears and stopped
// when it goes. Each bot runs once per deployment, not once per worker process: a process runs a
// bot only while it holds the bot's lease on the shared backend, renewed every third of its life;
// a process that dies stops renewing, and another worker takes the bot over within one lease.
import { randomUUID } from "node:crypto";
import type { Backend } from "../backend.js";
import type { LogLevel, LogSink } from "../builtins.js";
import type { JobDefinition } from "../definitions.js";
import type { Params } from "../params.js";
import { SlackBot, type BotHost } from "./bot.js";
import { SlackConfigError } from "./errors.js";
import { isFatalSlackError, type SocketTimings } from "./transport.js";

export { injectionRunner } from "./injection.js";

export interface SlackBotsOptions {
  backend: Backend;
  params: Pick<Params, "slackApiUrl" | "jobScriptTimeout">;
  log: LogSink;
  /** issue a task that only `job` runs */
  issue: BotHost["issue"];
  /** seconds a lease on a bot lasts without renewal (default 30) */
  leaseSeconds?: number;
  env?: Record<string, string | undefined>;
  timings?: SocketTimings;
}

interface Running {
  bot: SlackBot;
  /** the Slack block it was started with: a change of tokens means a new connection */
  key: string;
}

export class SlackBots {
  /** this process, as the holder of leases */
  readonly owner = randomUUID();
  private wanted = new Map<string, JobDefinition>();
  private readonly running = new Map<string, Running>();
  /** bots that could not start, with why: tried again only when their definition changes (fatal) or at the next renewal */
  private readonly failed = new Map<string, { key: string; message: string; fatal: boolean }>();
  private readonly timer: NodeJS.Timeout;
  private reconciling?: Promise<void>;
  private again = false;
  private stopped = false;
  private warnedNoLease = false;

  constructor(private readonly options: SlackBotsOptions) {
    const every = ((options.leaseSeconds ?? 30) * 1000) / 3;
    this.timer = setInterval(() => void this.reconcile(), every).unref();
  }

  /** The bots this process runs now, by job name, with their transport. */
  get active(): Map<string, string | undefined> {
    return new Map([...this.running].map(([name, r]) => [name, r.bot.kind]));
  }

  /** Take the current job definitions: bots start for new Slack jobs and stop for removed ones. */
  sync(definitions: JobDefinition[]): Promise<void> {
    this.wanted = new Map(definitions.filter((d) => d.slack).map((d) => [d.name, d]));
    return this.reconcile();
  }

  /** Stop every bot and give up the leases. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    // Bots still connecting are stopped too: their start then fails at once.
    await Promise.all([...this.running.keys()].map((name) => this.stopBot(name)));
    await this.reconciling;
  }

  /** One pass at a time; a request during a pass runs one more pass after it. */
  private reconcile(): Promise<void> {
    if (this.reconciling) {
      this.again = true;
      return this.reconciling;
    }
    this.reconciling = (async () => {
      do {
        this.again = false;
        await this.pass().catch((err) => this.log("error", `slack: ${(err as Error).message}`));
      } while (this.again && !this.stopped);
      this.reconciling = undefined;
    })();
    return this.reconciling;
  }

  private async pass(): Promise<void> {
    if (this.stopped) return;
    for (const name of [...this.running.keys()]) {
      const wanted = this.wanted.get(name);
      const current = this.running.get(name)!;
      if (!wanted || keyOf(wanted) !== current.key) await this.stopBot(name);
      else current.bot.update(wanted);
    }
    await Promise.all(
      [...this.wanted.values()].map(async (definition) => {
        const name = definition.name;
        const key = keyOf(definition);
        const failure = this.failed.get(name);
        if (failure && failure.key !== key) this.failed.delete(name);
        else if (failure?.fatal) return;
        if (!(await this.claim(name))) {
          if (this.running.has(name)) {
            this.log("warning", `slack: lost the lease on bot ${name} to another process; stopping it here`, name);
            await this.stopBot(name, false);
          }
          return;
        }
        if (!this.running.has(name) && !this.stopped) await this.startBot(definition, key);
      }),
    );
  }

  private async startBot(definition: JobDefinition, key: string): Promise<void> {
    const { backend, params, log, issue, env, timings } = this.options;
    const bot = new SlackBot(definition, {
      issue,
      waitEnded: (taskid, ms, signal) => backend.waitEnded(taskid, ms, signal),
      log,
      apiUrl: params.slackApiUrl,
      scriptTimeout: params.jobScriptTimeout,
      env,
      timings,
    });
    this.running.set(definition.name, { bot, key });
    try {
      await bot.start();
      this.failed.delete(definition.name);
    } catch (err) {
      if (this.running.get(definition.name)?.bot === bot) this.running.delete(definition.name);
      await bot.stop().catch(() => {});
      await this.release(definition.name);
      if (this.stopped) return;
      const message = (err as Error).message;
      const fatal = err instanceof SlackConfigError || isFatalSlackError(err);
      if (this.failed.get(definition.name)?.message !== message) {
        this.log("error", `slack: bot ${definition.name} could not start: ${message}${fatal ? "" : " (trying again)"}`, definition.name);
      }
      this.failed.set(definition.name, { key, message, fatal });
    }
  }

  private async stopBot(name: string, release = true): Promise<void> {
    const running = this.running.get(name);
    if (!running) return;
    this.running.delete(name);
    await running.bot.stop().catch((err) => this.log("error", `slack: stopping bot ${name}: ${(err as Error).message}`, name));
    if (release) await this.release(name);
  }

  private async claim(name: string): Promise<boolean> {
    const { backend } = this.options;
    if (!backend.claim) {
      // One process has the whole memory queue; elsewhere a backend without leases cannot share bots.
      if (backend.mode !== "memory" && !this.warnedNoLease) {
        this.warnedNoLease = true;
        this.log("warning", `slack: the ${backend.mode} backend has no leases; every worker process will run the Slack bots`);
      }
      return true;
    }
    return backend.claim(leaseName(name), this.owner, this.options.leaseSeconds ?? 30);
  }

  private async release(name: string): Promise<void> {
    await this.options.backend.release?.(leaseName(name), this.owner).catch(() => {});
  }

  private log(level: LogLevel, message: string, job?: string): void {
    this.options.log({ level, message, job });
  }
}

function leaseName(job: string): string {
  return `slack-bot:${job}`;
}

function keyOf(definition: JobDefinition): string {
  const { token, app_token } = definition.slack ?? {};
  return JSON.stringify([token, app_token]);
}
