// `jobshell task` and `jobshell check` as real processes: output, exit codes, and a
// one-line reason for bad arguments or an unreachable server. Runs dist/cli.js (`npm test` builds it).
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { internals } from "../src/internals.js";
import { open, type JobShell } from "../src/jobshell.js";
import { amqpUrl, backends, deleteRedisNamespace, redisUrl, requireServer, uniqueNamespace } from "./each-backend.js";

const cli = path.resolve("dist/cli.js");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function jobshell(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      // No REDIS_URL / AMQP_URL from the caller's environment unless a test gives one.
      { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("jobshell check", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "jobshell-check-"));
    await writeFile(path.join(dir, "good.yaml"), "- name: fine\n  topics: [a]\n  script: return 1\n");
    await writeFile(
      path.join(dir, "bad.yaml"),
      "- name: typo\n  topics: [a]\n  scirpt: return 1\n- name: syntax\n  topics: [b]\n  script: |-\n    const x = 1\n    return (x\n",
    );
    await writeFile(path.join(dir, "empty-topics.yml"), "- name: lonely\n  topics: []\n  script: return 1\n");
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("exits 0 and names the jobs when every file is valid", async () => {
    const r = await jobshell(["check", "samples/jobs"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok: \d+ jobs \(/);
    expect(r.stdout).toContain("saga-compensate");
  });

  it("exits 1 listing every error of every file, with file, job, field and script line", async () => {
    const r = await jobshell(["check", path.join(dir, "bad.yaml"), path.join(dir, "empty-topics.yml"), path.join(dir, "good.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("bad.yaml");
    expect(r.stderr).toContain("scirpt");
    expect(r.stderr).toMatch(/job syntax: script: line 2:\d+/);
    expect(r.stderr).toMatch(/empty-topics\.yml: job lonely: topics/);
    expect(r.stderr.trim().split("\n").length).toBeGreaterThanOrEqual(4);
  });

  it("a path that does not exist is an error, and no path at all is a usage error", async () => {
    const missing = await jobshell(["check", path.join(dir, "nope.yaml")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("nope.yaml");
    const none = await jobshell(["check"]);
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("jobshell: commands and their arguments", () => {
  const unreachable = ["--amqp", "amqp://127.0.0.1:1"];

  it("an unknown command or a stray argument exits 2 with one line naming it, before anything starts", async () => {
    const cases: [string[], string][] = [
      [["serv", "--port", "18990"], 'unknown command "serv" (commands: shell, worker, serve, task, check, help)'],
      [["samples/jobs"], 'unexpected argument "samples/jobs" (did you mean --jobs samples/jobs?)'],
      [["serve", "extra-positional"], 'unexpected argument "extra-positional" (jobshell serve takes no arguments)'],
      [["worker", "stray", ...unreachable], 'unexpected argument "stray" (jobshell worker takes no arguments)'],
      [["shell", "--no-worker", "samples/jobs/example.yaml"], 'unexpected argument "samples/jobs/example.yaml" (did you mean --jobs samples/jobs/example.yaml?)'],
      [["task", "hello", "{}", "more", ...unreachable], 'unexpected argument "more" (jobshell task takes TOPIC [JSON])'],
      [["--job-transaction-event", "false"], 'unexpected argument "false" (a switch takes its value as --name=false)'],
    ];
    for (const [args, line] of cases) {
      const r = await jobshell(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toBe(`jobshell: ${line}\n`);
    }
  });

  it("takes -h, -v, -V and jobshell help as npm CLIs do; each command's help lists all its options", async () => {
    for (const args of [["-h"], ["--help"], ["help"]]) {
      const r = await jobshell(args);
      expect(r.code, args.join(" ")).toBe(0);
      for (const flag of ["--port N", "--host ADDRESS", "--expire S", "--wait", "--timeout S", "--no-worker", "--jobs PATH", "--api-url"]) {
        expect(r.stdout, `${args.join(" ")}: ${flag}`).toContain(flag);
      }
    }
    for (const args of [["-v"], ["-V"], ["--version"]]) {
      const r = await jobshell(args);
      expect(r.code, args.join(" ")).toBe(0);
      expect(r.stdout).toMatch(/^jobshell \d+\.\d+\.\d+\n$/);
    }
    const serve = await jobshell(["serve", "-h"]);
    expect(serve.stdout).toMatch(/^Usage:\n  jobshell serve /);
    for (const flag of ["--port N", "--host ADDRESS", "--no-worker", "--jobs PATH", "--replace-jobs", "--config FILE"]) expect(serve.stdout).toContain(flag);
    expect(serve.stdout).not.toContain("--expire");
    const task = await jobshell(["help", "task"]);
    expect(task.code).toBe(0);
    for (const flag of ["--expire S", "--wait", "--timeout S", "--api-url"]) expect(task.stdout).toContain(flag);
    expect(task.stdout).not.toContain("--port");
    const unknown = await jobshell(["-x"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("jobshell: unknown option -x (see jobshell --help)\n");
  });

  it("a flag of another command is refused, not ignored", async () => {
    const cases: [string[], string][] = [
      [["shell", "--expire", "3"], "--expire is an option of jobshell task, not of jobshell shell"],
      [["worker", "--wait", ...unreachable], "--wait is an option of jobshell task, not of jobshell worker"],
      [["serve", "--timeout", "5"], "--timeout is an option of jobshell task, not of jobshell serve"],
      [["task", "hello", "--port", "8080", ...unreachable], "--port is an option of jobshell serve, not of jobshell task"],
      [["--host", "127.0.0.1"], "--host is an option of jobshell serve, not of jobshell shell"],
      [["check", "--no-worker", "samples/jobs"], "--no-worker is an option of jobshell shell and serve, not of jobshell check"],
    ];
    for (const [args, line] of cases) {
      const r = await jobshell(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toBe(`jobshell: ${line}\n`);
    }
  });

  it("the command is the first word even after flags, as `npm start -- ARGS` gives it", async () => {
    const r = await jobshell(["--jobs", "samples/jobs", "check", "samples/jobs"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok: \d+ jobs/);
  });
});

describe("jobshell task: arguments", () => {
  it("without a shared queue and no jobshell serve at api_url it exits 1 with one line saying what to give", async () => {
    const r = await jobshell(["task", "hello"], { JOBSHELL_API_URL: "http://127.0.0.1:1" });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^jobshell: no jobshell serve answers at http:\/\/127\.0\.0\.1:1 .*: start one, or give --api-url URL, --redis URL or --amqp URL\n$/);
  });

  it("content that is not JSON or not an object, a bad expire, a missing topic or an unknown option exits 2 with one line", async () => {
    const bad = [
      ["task", "hello", "{nope", "--amqp", amqpUrl],
      // checked before connecting: the unreachable URL is never tried
      ["task", "hello", "[1, 2]", "--amqp", "amqp://127.0.0.1:1"],
      ["task", "hello", "--expire", "0", "--amqp", "amqp://127.0.0.1:1"],
      ["task", "--amqp", amqpUrl],
      ["task", "hello", "--frobnicate"],
      // a switch is on or off, nothing else
      ["task", "hello", "--wait=maybe", "--amqp", "amqp://127.0.0.1:1"],
      ["task", "hello", "--wait=", "--amqp", "amqp://127.0.0.1:1"],
      // an Object.prototype name is no option either
      ["task", "hello", "--constructor", "--amqp", "amqp://127.0.0.1:1"],
    ];
    for (const args of bad) {
      const r = await jobshell(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
    }
  });

  it("--expire, --timeout and --port say the rule that applies, and take only plain decimal numbers", async () => {
    const unreachable = ["--amqp", "amqp://127.0.0.1:1"];
    for (const expire of ["0", "-1", "0x10", "1e3", ""]) {
      const r = await jobshell(["task", "hello", "--expire", expire, ...unreachable]);
      expect(r.code, expire).toBe(2);
      expect(r.stderr).toBe(`jobshell: --expire must be a positive number of seconds, got ${expire}\n`);
    }
    for (const timeout of ["-1", "1e3"]) {
      const r = await jobshell(["task", "hello", "--wait", "--timeout", timeout, ...unreachable]);
      expect(r.code, timeout).toBe(2);
      expect(r.stderr).toBe(`jobshell: --timeout must be a number of seconds, 0 or more, got ${timeout}\n`);
    }
    const port = await jobshell(["serve", "--port", "0x50"]);
    expect(port.code).toBe(2);
    expect(port.stderr).toBe("jobshell: --port must be a port number from 0 to 65535, got 0x50\n");
  });

  it("a queue flag overrides the other mode set by a variable or the config file", async () => {
    // Unreachable URLs: the line says which mode was chosen, where "both set" would be a conflict.
    const amqpFlag = await jobshell(["task", "hello", "--amqp", "amqp://127.0.0.1:1"], { REDIS_URL: "redis://127.0.0.1:6379" });
    expect(amqpFlag.code).toBe(1);
    expect(amqpFlag.stderr).toMatch(/^jobshell: cannot connect to RabbitMQ at amqp:\/\/127\.0\.0\.1:1/);
    const redisFlag = await jobshell(["task", "hello", "--redis", "redis://127.0.0.1:1"], { AMQP_URL: amqpUrl });
    expect(redisFlag.code).toBe(1);
    expect(redisFlag.stderr).toMatch(/^jobshell: cannot use Redis at redis:\/\/127\.0\.0\.1:1/);
    const dir = await mkdtemp(path.join(tmpdir(), "jobshell-mode-"));
    try {
      await writeFile(path.join(dir, "jobshell.yaml"), `amqp_url: ${amqpUrl}\n`);
      const overConfig = await jobshell(["task", "hello", "--config", path.join(dir, "jobshell.yaml"), "--redis", "redis://127.0.0.1:1"]);
      expect(overConfig.code).toBe(1);
      expect(overConfig.stderr).toMatch(/^jobshell: cannot use Redis at redis:\/\/127\.0\.0\.1:1/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // two flags are a conflict, named by the flags given
    const both = await jobshell(["task", "hello", "--redis", "redis://127.0.0.1:1", "--amqp", "amqp://127.0.0.1:1"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toBe("jobshell: redis_url (from --redis) and amqp_url (from --amqp) are both set: choose one queue mode\n");
  });

  it("a true-or-false parameter's flag alone means true and leaves the next argument alone", async () => {
    // `hello` stays the topic: the run gets as far as connecting
    const alone = await jobshell(["task", "--job-transaction-event", "hello", "--amqp", "amqp://127.0.0.1:1"]);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toMatch(/^jobshell: cannot connect to RabbitMQ/);
    const off = await jobshell(["task", "hello", "--job-transaction-event=false", "--amqp", "amqp://127.0.0.1:1"]);
    expect(off.stderr).toMatch(/^jobshell: cannot connect to RabbitMQ/);
    // a wrong value names the flag it was given with
    const wrong = await jobshell(["task", "hello", "--job-transaction-event=hello", "--amqp", "amqp://127.0.0.1:1"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toBe('jobshell: job_transaction_event (from --job-transaction-event) must be true or false, got "hello"\n');
  });

  it("a queue URL of the wrong scheme is a bad argument: exit 2 with one line, for --amqp as for --redis", async () => {
    for (const flag of ["--amqp", "--redis"]) {
      const r = await jobshell(["task", "hello", flag, "http://guest:hunter2@127.0.0.1:5672"]);
      expect(r.code, flag).toBe(2);
      expect(r.stderr.trim().split("\n"), flag).toHaveLength(1);
      expect(r.stderr, flag).toMatch(flag === "--amqp" ? /amqp_url must start with amqp:\/\/ or amqps:\/\// : /redis_url must start with/);
      expect(r.stderr, flag).not.toContain("hunter2");
    }
  });

  it("an unreachable server exits non-zero with one line, the password masked", async () => {
    const r = await jobshell(["task", "hello", "--amqp", "amqp://guest:hunter2@127.0.0.1:1"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toContain("hunter2");
  });
});

const amqp = backends.find((b) => b.name === "amqp")!;
const redis = backends.find((b) => b.name === "redis")!;

describe("jobshell task on Redis", () => {
  it("exits as soon as its work is done: no connection left to time out after the record is printed", { timeout: 60_000 }, async () => {
    if (!(await requireServer(redis))) return;
    const prefix = uniqueNamespace("linger");
    const args = ["task", `${prefix}.none`, "--wait", "--expire", "0.2", "--redis", redisUrl, "--redis-prefix", prefix];
    try {
      // A race: disconnecting a connection QUIT has ended starts ioredis's 2 s disconnectTimeout. Hence several runs.
      for (let i = 0; i < 10; i++) {
        const lingered = await new Promise<number>((resolve) => {
          const child = spawn(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? "" } });
          let printed = Date.now();
          child.stdout.on("data", () => (printed = Date.now()));
          child.on("close", () => resolve(Date.now() - printed));
        });
        expect(lingered, `run ${i + 1}`).toBeLessThan(1500);
      }
    } finally {
      await deleteRedisNamespace(prefix);
    }
  });
});

describe("jobshell task on RabbitMQ", () => {
  let available = false;
  let worker: JobShell | undefined;
  let dir: string;
  // The command line has no namespace: it uses the deployment's queue, so the names here are unique.
  const tag = `jstest-cli-${process.pid}-${Date.now().toString(36)}`;

  beforeAll(async () => {
    available = await requireServer(amqp);
    if (!available) return;
    dir = await mkdtemp(path.join(tmpdir(), "jobshell-task-"));
    await writeFile(
      path.join(dir, "jobs.yaml"),
      `- name: ${tag}-ok\n  topics: [${tag}.ok]\n  script: return "hi " + task.content.name\n` +
        `- name: ${tag}-fail\n  topics: [${tag}.fail]\n  script: throw new Error("nope")\n` +
        `- name: ${tag}-slow\n  topics: [${tag}.slow]\n  script: await sleep(3)\n`,
    );
    worker = await open({ amqpUrl, jobs: [path.join(dir, "jobs.yaml")], log: () => {} });
  });

  afterAll(async () => {
    if (worker) {
      await internals(worker).removeJob(`${tag}-ok`).catch(() => {});
      await internals(worker).removeJob(`${tag}-fail`).catch(() => {});
      await internals(worker).removeJob(`${tag}-slow`).catch(() => {});
      await worker.close();
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a virtual host that does not exist exits 1 with one line naming it and the broker's refusal", async () => {
    if (!available) return;
    const url = new URL(amqpUrl);
    url.pathname = `/${tag}-nosuchvhost`;
    const r = await jobshell(["task", "hello", "--amqp", url.toString()]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(`virtual host "${tag}-nosuchvhost" not found, or the user may not use it (NOT_ALLOWED)`);
    expect(r.stderr).not.toContain("ConnectionOpenOk");
  });

  it("prints the taskid and exits 0", async () => {
    if (!available) return;
    const r = await jobshell(["task", `${tag}.ok`, '{"name": "amuro"}', "--amqp", amqpUrl]);
    expect(r.code, r.stderr).toBe(0);
    const taskid = r.stdout.trim();
    expect(taskid).toMatch(/^[0-9a-f]{32}$/);
    expect((await worker!.waitfor(taskid, 20)).status).toBe("completed");
  });

  it("--wait prints the record as YAML and exits 0 when it completed", async () => {
    if (!available) return;
    const r = await jobshell(["task", `${tag}.ok`, '{"name": "char"}', "--expire", "30", "--wait", "--amqp", amqpUrl]);
    expect(r.code, r.stderr).toBe(0);
    const record = parseYaml(r.stdout) as Record<string, any>;
    expect(record).toMatchObject({ topic: `${tag}.ok`, status: "completed", expire: 30 });
    expect(record.results[0]).toMatchObject({ job: `${tag}-ok`, status: "completed", value: "hi char" });
  });

  it("a worker whose job files differ from the queue's jobs is refused, naming --replace-jobs, and changes nothing", async () => {
    if (!available) return;
    const changed = path.join(dir, "changed.yaml");
    await writeFile(changed, `- name: ${tag}-ok\n  topics: [${tag}.ok]\n  script: return "changed"\n`);
    const r = await jobshell(["worker", "--jobs", changed, "--amqp", amqpUrl]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`job ${tag}-ok differs from the one the queue has \\(from .*jobs\\.yaml\\); start with --replace-jobs to replace it`));
    const wait = await jobshell(["task", `${tag}.ok`, '{"name": "ryu"}', "--wait", "--amqp", amqpUrl]);
    expect((parseYaml(wait.stdout) as { results: { value: string }[] }).results[0].value).toBe("hi ryu");
  });

  it("--wait=false does not wait and --wait=true does", async () => {
    if (!available) return;
    // the slow job sleeps 3 s: printing the taskid only means nothing waited for it
    const noWait = await jobshell(["task", `${tag}.slow`, "--expire", "30", "--wait=false", "--amqp", amqpUrl]);
    expect(noWait.code, noWait.stderr).toBe(0);
    expect(noWait.stdout).toMatch(/^[0-9a-f]{32}\n$/);
    const wait = await jobshell(["task", `${tag}.ok`, '{"name": "kai"}', "--wait=true", "--amqp", amqpUrl]);
    expect(wait.code, wait.stderr).toBe(0);
    expect((parseYaml(wait.stdout) as Record<string, unknown>).status).toBe("completed");
  });

  it("--wait exits 1 when the task failed, still printing the record", async () => {
    if (!available) return;
    const r = await jobshell(["task", `${tag}.fail`, "--wait", "--amqp", amqpUrl]);
    expect(r.code).toBe(1);
    const record = parseYaml(r.stdout) as Record<string, any>;
    expect(record.status).toBe("failed");
    expect(record.results[0].error).toContain("nope");
  });

  it("a topic no job handles is said on stderr with the nearest topic, and --wait exits 3", async () => {
    if (!available) return;
    const r = await jobshell(["task", `${tag}.okk`, "--wait", "--amqp", amqpUrl]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toBe(`jobshell task: warning: no job handles topic '${tag}.okk' (did you mean '${tag}.ok'?)\n`);
    const record = parseYaml(r.stdout) as Record<string, any>;
    expect(record).toMatchObject({ status: "completed", results: [] });
    const noWait = await jobshell(["task", `${tag}.okk`, "--amqp", amqpUrl]);
    expect(noWait.code).toBe(0);
    expect(noWait.stdout).toMatch(/^[0-9a-f]{32}\n$/);
  });

  it("--wait --timeout exits 1 with one line when the task has not ended in time", async () => {
    if (!available) return;
    const r = await jobshell(["task", `${tag}.slow`, "--expire", "30", "--wait", "--timeout", "0.5", "--amqp", amqpUrl]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/did not end within 0\.5 s/);
  });
});
