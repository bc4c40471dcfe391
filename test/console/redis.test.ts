// The console in Redis mode: the server runs no worker; a `jobshell worker` in another process ends
// the tasks, and the tasks view lists them (live, and after a reload) with each job's result.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve, type RunningServer } from "../../src/server/index.js";
import { redisUrl } from "../each-backend.js";
import { browserMissing, launch, watchedPage } from "./browser.js";

async function redisMissing(): Promise<string | undefined> {
  const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await probe.connect();
    return undefined;
  } catch (err) {
    const missing = `Redis at ${redisUrl}: ${(err as Error).message}`;
    if (process.env.CI) throw new Error(`console Redis test under CI: ${missing}`);
    console.warn(`\n*** SKIPPING the console's Redis test: ${missing} ***\n`);
    return missing;
  } finally {
    probe.disconnect();
  }
}

const missing = browserMissing() ?? (await redisMissing());

describe.skipIf(missing !== undefined)("web console in Redis mode", () => {
  const prefix = `jsconsole${randomBytes(4).toString("hex")}`;
  const folder = mkdtempSync(path.join(tmpdir(), "jobshell-console-"));
  let js: JobShell;
  let server: RunningServer;
  let browser: Browser;
  let worker: ChildProcess;
  let workerLog = "";

  beforeAll(async () => {
    const jobs = path.join(folder, "jobs.yaml");
    writeFileSync(jobs, "- name: remote\n  topics: [remote.work]\n  script: return 'ran task ' + task.content.n\n");
    // The worker: another process on the same queue (dist/cli.js; `npm test` builds it).
    worker = spawn(process.execPath, [path.resolve("dist/cli.js"), "worker", "--redis", redisUrl, "--redis-prefix", prefix, "--jobs", jobs], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
    });
    worker.stderr!.on("data", (c) => (workerLog += c));
    worker.stdout!.on("data", (c) => (workerLog += c));
    js = await open({ redisUrl, redisPrefix: prefix, worker: false, log: () => {} });
    // The worker publishes its jobs to the queue: wait until this process knows them.
    const until = Date.now() + 20_000;
    while (!js.jobs().some((d) => d.name === "remote")) {
      if (Date.now() > until) throw new Error(`the worker did not start: ${workerLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    server = await serve(js, { port: 0, host: "127.0.0.1", log: () => {} });
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await js?.close();
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker.once("close", r));
      worker.kill("SIGTERM");
      await exited;
    }
    const redis = new Redis(redisUrl);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    rmSync(folder, { recursive: true, force: true });
  });

  it("lists tasks ended by a worker in another process, live and after a reload", async () => {
    const context = await browser.newContext({ baseURL: server.url });
    const page = await watchedPage(context);
    const before = await js.task("remote.work", { n: 1 });
    await js.waitfor(before, 20);
    await page.goto("/console/tasks?topic=remote.work");
    await page.locator(`tr[data-taskid="${before}"] .status`, { hasText: "completed" }).waitFor();
    expect(await page.locator(`tr[data-taskid="${before}"]`).textContent()).toContain("remote");
    await page.locator("#live[data-state=on]").waitFor();
    const after = await js.task("remote.work", { n: 2 });
    await page.locator(`tr[data-taskid="${after}"] .status`, { hasText: "completed" }).waitFor({ timeout: 10_000 });
    await page.goto(`/console/tasks/${after}`);
    await page.getByLabel("result of remote").filter({ hasText: "ran task 2" }).waitFor();
    await page.goto("/console");
    expect(await page.getByText("No worker is running").count()).toBe(0);
    expect(page.problems).toEqual([]);
    await context.close();
  });
});
