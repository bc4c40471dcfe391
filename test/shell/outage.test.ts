// The shell while its queue server goes away and comes back, driven through a pipe block by block:
// it says once that it lost the server and once that it regained it, and a waitfor() in flight
// meanwhile resolves with the record. Redis: a redis-server of the test's own (its data on disk),
// killed with SIGKILL and started again on the same port. RabbitMQ: a virtual host of the test's
// own, whose connections the broker closes (nothing else on the broker is touched).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisServer, type OwnRedis } from "../backends/redis-server.js";
import { amqpUrl, backends, itWhen, requireServer, uniqueNamespace } from "../each-backend.js";
import { liveShell, requireBuild } from "./pipe.js";

const run = promisify(execFile);
const folder = mkdtempSync(path.join(tmpdir(), "jobshell-outage-"));
const jobsFile = path.join(folder, "nap.yaml");
writeFileSync(
  jobsFile,
  `
- name: nap
  topics: [nap]
  script: |-
    qprint("napping", task.content.n)
    await sleep(task.content.s)
    return "napped"
`,
);

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern.source, "g"))?.length ?? 0;

const lostRedis = /lost the Redis server at redis:\/\/127\.0\.0\.1:\d+: reconnecting \(tasks in flight carry on once it is back\)\n/;
const regainedRedis = /Redis server regained after \d+\.\d s\n/;
const lostRabbit = /lost the RabbitMQ server at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672\/[\w-]+: reconnecting \(tasks in flight carry on once it is back\)\n/;
const regainedRabbit = /RabbitMQ server regained after \d+\.\d s\n/;

/** Starts a nap of `seconds` and waits for it in a block, once the job says it started. */
async function napInFlight(shell: ReturnType<typeof liveShell>, seconds: number): Promise<void> {
  shell.write(`debug()\nprint("ready")\n\n`);
  await shell.until(/ready\n/);
  shell.write(`id = await task("nap", { n: 1, s: ${seconds} })\nr = await waitfor(id, 60)\nprint("ended", r.status, r.dictionary.results[0].value)\n\n`);
  await shell.until(/napping 1\n/);
}

beforeAll(requireBuild);
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe("the shell says once that it lost the Redis server and once that it regained it", { timeout: 60_000 }, () => {
  const servers: OwnRedis[] = [];
  afterAll(() => servers.forEach((s) => s.stop()));

  it("a redis-server killed and started again: one line each, and the waitfor() in flight resolves", async () => {
    const dir = mkdtempSync(path.join(folder, "redis-"));
    const server = await startRedisServer("the shell's Redis outage test", { dir });
    if (!server) return; // no redis-server here (under CI that failed already)
    servers.push(server);
    const shell = liveShell(["--jobs", jobsFile, "--redis", server.url, "--redis-prefix", uniqueNamespace("outage")]);
    await napInFlight(shell, 3);
    server.stop();
    await shell.until(lostRedis);
    // Down for a while: every reconnection attempt meanwhile fails, and says nothing more.
    await new Promise((r) => setTimeout(r, 1500));
    const again = await startRedisServer("the shell's Redis outage test", { dir, port: server.port });
    servers.push(again!);
    await shell.until(regainedRedis);
    await shell.until(/ended completed napped\n/);
    shell.write(`print("bye")\n\n`);
    const { stdout, code } = await shell.end();
    expect(count(stdout, lostRedis)).toBe(1);
    expect(count(stdout, regainedRedis)).toBe(1);
    expect(stdout.indexOf("lost the Redis")).toBeLessThan(stdout.indexOf("Redis server regained"));
    expect(stdout).toContain("bye\n");
    expect(code).toBe(0);
  });
});

describe("the shell says once that it lost the RabbitMQ server and once that it regained it", { timeout: 60_000 }, () => {
  let ready = false;
  const vhost = uniqueNamespace("outage");
  const ctl = (...args: string[]) => run("rabbitmqctl", ["-q", ...args], { timeout: 30_000 });

  beforeAll(async () => {
    ready = await requireServer(backends.find((b) => b.name === "amqp")!);
    if (!ready) return;
    try {
      await ctl("add_vhost", vhost);
      await ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*");
    } catch (err) {
      if (process.env.CI) throw new Error(`the shell's RabbitMQ outage test needs rabbitmqctl: ${(err as Error).message}`);
      console.warn(`\n!!! SKIPPING the shell's RabbitMQ outage test: rabbitmqctl failed: ${(err as Error).message}\n`);
      ready = false;
    }
  });
  afterAll(async () => {
    if (ready) await ctl("delete_vhost", vhost).catch(() => {});
  });

  const maybe = itWhen(() => ready);
  maybe("the broker closes the shell's connection: one line each, and the waitfor() in flight resolves", async () => {
    const url = `${amqpUrl.replace(/\/$/, "")}/${vhost}`;
    const shell = liveShell(["--jobs", jobsFile, "--amqp", url]);
    await napInFlight(shell, 2);
    await ctl("close_all_connections", "--vhost", vhost, "--limit", "100", "the shell's outage test");
    await shell.until(lostRabbit);
    await shell.until(regainedRabbit);
    await shell.until(/ended completed napped\n/);
    shell.write(`print("bye")\n\n`);
    const { stdout, code } = await shell.end();
    expect(count(stdout, lostRabbit)).toBe(1);
    expect(count(stdout, regainedRabbit)).toBe(1);
    expect(stdout).toContain("bye\n");
    expect(code).toBe(0);
  });
});
