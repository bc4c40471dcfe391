// The console on a shared queue, where its server runs no worker: in Redis mode a `jobshell worker`
// in another process ends the tasks; in AMQP mode (whose command line has no namespace of its own
// for a test to keep apart) a worker on a second connection to the same queue does, as the backends'
// contract suite has its processes. The tasks view lists what that worker ended, live and after a
// reload, with each job's result.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve, type RunningServer } from "../../src/server/index.js";
import { amqpUrl, backends, deleteRedisNamespace, redisUrl, requireServer, uniqueNamespace } from "../each-backend.js";
import { browserMissing, launch, watchedPage } from "./browser.js";

const noBrowser = browserMissing();
const jobYaml = "- name: remote\n  topics: [remote.work]\n  script: return 'ran task ' + task.content.n\n";

interface Mode {
  name: "redis" | "amqp";
  /** the console's own instance, without a worker */
  console(namespace: string): Promise<JobShell>;
  /** the worker elsewhere; returns how to stop it */
  worker(namespace: string, jobsFile: string): Promise<() => Promise<void>>;
  cleanup(namespace: string): Promise<void>;
}

const modes: Mode[] = [
  {
    name: "redis",
    console: (namespace) => open({ redisUrl, redisPrefix: namespace, worker: false, log: () => {} }),
    async worker(namespace, jobsFile) {
      // dist/cli.js: `npm test` builds it.
      const child: ChildProcess = spawn(process.execPath, [path.resolve("dist/cli.js"), "worker", "--redis", redisUrl, "--redis-prefix", namespace, "--jobs", jobsFile], {
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
        stdio: "ignore",
      });
      return async () => {
        if (child.exitCode !== null) return;
        const exited = new Promise((r) => child.once("close", r));
        child.kill("SIGTERM");
        await exited;
      };
    },
    cleanup: deleteRedisNamespace,
  },
  {
    name: "amqp",
    console: (namespace) => open({ amqpUrl, namespace, worker: false, log: () => {} }),
    async worker(namespace, jobsFile) {
      const other = await open({ amqpUrl, namespace, jobs: [jobsFile], log: () => {} });
      return () => other.close();
    },
    cleanup: (namespace) => backends.find((b) => b.name === "amqp")!.cleanup!(namespace),
  },
];

for (const mode of modes) {
  const ready = noBrowser === undefined && (await requireServer(backends.find((b) => b.name === mode.name)!));
  describe.skipIf(!ready)(`web console in ${mode.name} mode`, () => {
    const namespace = uniqueNamespace(`console-${mode.name}`);
    const folder = mkdtempSync(path.join(tmpdir(), "jobshell-console-"));
    let js: JobShell;
    let server: RunningServer;
    let browser: Browser;
    let stopWorker: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      const jobsFile = path.join(folder, "jobs.yaml");
      writeFileSync(jobsFile, jobYaml);
      stopWorker = await mode.worker(namespace, jobsFile);
      js = await mode.console(namespace);
      // The worker publishes its jobs to the queue: wait until the console's instance knows them.
      const until = Date.now() + 20_000;
      while (!js.jobs().some((d) => d.name === "remote")) {
        if (Date.now() > until) throw new Error(`the ${mode.name} worker's jobs never reached the console`);
        await new Promise((r) => setTimeout(r, 100));
      }
      server = await serve(js, { port: 0, host: "127.0.0.1", log: () => {} });
      browser = await launch();
    });

    afterAll(async () => {
      await browser?.close();
      await server?.close();
      await js?.close();
      await stopWorker?.();
      await mode.cleanup(namespace).catch(() => {});
      rmSync(folder, { recursive: true, force: true });
    });

    it("lists tasks ended by a worker elsewhere on the queue, live and after a reload", async () => {
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
}
