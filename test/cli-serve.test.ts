// `jobshell serve` as a real process (dist/cli.js; `npm test` builds it): it listens, answers,
// refuses to bind beyond loopback without a token, and stops on SIGTERM.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

const cli = path.resolve("dist/cli.js");
const started: ChildProcess[] = [];

function start(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [cli, "serve", ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
  });
  started.push(child);
  let stderr = "";
  let stdout = "";
  child.stdout.on("data", (c) => (stdout += c));
  const exited = new Promise<number>((resolve) => child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  const url = new Promise<string>((resolve, reject) => {
    child.stderr.on("data", (c) => {
      stderr += c;
      const m = /^jobshell serve: (http:\/\/\S+) /m.exec(stderr);
      if (m) resolve(m[1]);
    });
    void exited.then(() => reject(new Error(`exited before listening: ${stderr}`)));
  });
  url.catch(() => {});
  return { child, url, exited, output: () => stdout + stderr };
}

/** `jobshell task ARGS` to its end. */
function task(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, "task", ...args], { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

afterEach(() => {
  for (const child of started.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

describe("jobshell serve", () => {
  it("serves the API with a worker and the sample jobs, and stops on SIGTERM", async () => {
    const s = start(["--port", "0", "--jobs", "samples/jobs/example.yaml"]);
    const url = await s.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const issued = await fetch(`${url}/tasks`, { method: "POST", body: JSON.stringify({ topic: "hello", content: { name: "amuro" } }) });
    expect(issued.status).toBe(201);
    const { taskid } = (await issued.json()) as { taskid: string };
    const record = (await (await fetch(`${url}/tasks/${taskid}/wait?timeout=10`)).json()) as { status: string };
    expect(record.status).toBe("completed");
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  });

  it("takes a JSON body sent as curl -d sends it (form-urlencoded); a real form is 415 naming the header", async () => {
    const s = start(["--port", "0", "--no-worker"]);
    const url = await s.url;
    const form = { "content-type": "application/x-www-form-urlencoded" };
    const issued = await fetch(`${url}/tasks`, { method: "POST", headers: form, body: '{"topic": "hello", "content": {"name": "amuro"}}' });
    expect(issued.status).toBe(201);
    const refused = await fetch(`${url}/tasks`, { method: "POST", headers: form, body: "topic=hello" });
    expect(refused.status).toBe(415);
    expect(((await refused.json()) as { detail: string }).detail).toContain("-H 'content-type: application/json'");
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  });

  it("POST /jobs of a job as it is defined already is no conflict; a changed one is 409", async () => {
    const s = start(["--port", "0", "--no-worker", "--jobs", "samples/jobs/example.yaml"]);
    const url = await s.url;
    const same = await fetch(`${url}/jobs`, { method: "POST", body: readFileSync("samples/jobs/example.yaml", "utf8") });
    expect(same.status).toBe(201);
    const changed = await fetch(`${url}/jobs`, { method: "POST", body: "- name: example\n  topics: [hello]\n  script: return 1\n" });
    expect(changed.status).toBe(409);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  });

  it("jobshell task reaches a running serve through --api-url or api_url, with the token", async () => {
    const token = "cli-task-token";
    const s = start(["--port", "0", "--jobs", "samples/jobs/example.yaml"], { JOBSHELL_API_TOKEN: token });
    const url = await s.url;
    const env = { JOBSHELL_API_TOKEN: token };
    const waited = await task(["hello", '{"name": "amuro"}', "--wait", "--api-url", url], env);
    expect(waited.code, waited.stderr).toBe(0);
    expect(parseYaml(waited.stdout)).toMatchObject({ topic: "hello", status: "completed", content: { name: "amuro" } });
    const issued = await task(["hello"], { ...env, JOBSHELL_API_URL: url });
    expect(issued.code, issued.stderr).toBe(0);
    expect(issued.stdout).toMatch(/^[0-9a-f]{32}\n$/);
    const typo = await task(["helo", "--wait", "--api-url", url], env);
    expect(typo.code).toBe(3);
    expect(typo.stderr).toBe("jobshell task: warning: no job handles topic 'helo' (did you mean 'hello'?)\n");
    const refused = await task(["hello", "--api-url", url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^jobshell: http:\/\/127\.0\.0\.1:\d+ refused POST \/tasks: 401 unauthorized: .*\n$/);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  });

  it("with JOBSHELL_API_TOKEN every request needs the token, which never shows in its output", async () => {
    const token = "cli-secret-token-42";
    const s = start(["--port", "0"], { JOBSHELL_API_TOKEN: token });
    const url = await s.url;
    expect((await fetch(`${url}/healthz`)).status).toBe(401);
    expect((await fetch(`${url}/healthz`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await fetch(`${url}/healthz`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    s.child.kill("SIGTERM");
    await s.exited;
    expect(s.output()).toContain("bearer token required");
    expect(s.output()).not.toContain(token);
  });

  it("--no-worker serves the API without running tasks", async () => {
    const s = start(["--port", "0", "--no-worker"]);
    const url = await s.url;
    const health = (await (await fetch(`${url}/healthz`)).json()) as { worker: boolean };
    expect(health.worker).toBe(false);
    const { taskid } = (await (await fetch(`${url}/tasks`, { method: "POST", body: '{"topic":"t","expire":30}' })).json()) as { taskid: string };
    const record = (await (await fetch(`${url}/tasks/${taskid}/wait?timeout=0.3`)).json()) as { status: string };
    expect(record.status).toBe("queued");
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    expect(s.output()).toContain("no worker");
  });

  it("refuses to listen beyond loopback without a token: exit 2, one line", async () => {
    const s = start(["--port", "0", "--host", "0.0.0.0"]);
    expect(await s.exited).toBe(2);
    const lines = s.output().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe("jobshell: refusing to listen on 0.0.0.0 without an API token: set JOBSHELL_API_TOKEN (required beyond loopback)");
  });

  it("a port in use is one line and a non-zero exit", async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    try {
      const port = (holder.address() as AddressInfo).port;
      const s = start(["--port", String(port)]);
      expect(await s.exited).not.toBe(0);
      const lines = s.output().trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("EADDRINUSE");
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });
});

/** A port nobody listens on (bound, read, let go). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A port held by something else for the test. */
async function heldPort(): Promise<{ port: number; release: () => Promise<unknown> }> {
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, release: () => new Promise((resolve) => server.close(resolve)) };
}

const shellEnv = (apiUrl: string) => ({ PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", JOBSHELL_HISTORY: "", NO_COLOR: "1", JOBSHELL_API_URL: apiUrl });

/** `jobshell ARGS` with `input` piped in, to its exit. */
function pipedShell(input: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env });
    started.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** `jobshell ARGS` on a terminal (script(1) gives it one): its screen so far, and a way to type. */
function terminalShell(args: string[], env: Record<string, string>) {
  const command = [process.execPath, cli, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const child = spawn("script", ["-qfec", command, "/dev/null"], { env: { ...env, TERM: "dumb" } });
  started.push(child);
  let screen = "";
  child.stdout.on("data", (c) => (screen += c));
  const exited = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 1)));
  const waitFor = async (pattern: RegExp, ms = 15_000) => {
    const until = Date.now() + ms;
    while (!pattern.test(screen)) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${pattern}; the screen: ${screen}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { child, exited, waitFor, screen: () => screen, type: (text: string) => child.stdin.write(text) };
}

describe("the shell serves the REST API and the console", { timeout: 60_000 }, () => {
  it("piped: the tutorial's callout(path=...) reaches this very shell's queue", async () => {
    const port = await freePort();
    const input = [
      'r = await callout(path="/tasks", method="POST", body={"topic": "t", "content": {}})',
      "print(r.code)",
      'rec = await waitfor(json.loads(r.body)["taskid"], 5)',
      "print(rec.status)",
      "",
    ].join("\n");
    const run = await pipedShell(input, ["--jobs", "samples/jobs"], shellEnv(`http://127.0.0.1:${port}`));
    expect(run.stderr).toBe("");
    expect(run.stdout).toBe("201\ncompleted\n");
    expect(run.code).toBe(0);
  });

  it("on a terminal the banner gives the console's URL, which answers while the shell runs", async () => {
    const port = await freePort();
    const t = terminalShell(["--no-worker"], shellEnv(`http://127.0.0.1:${port}`));
    await t.waitFor(/>>> /);
    expect(t.screen()).toContain(`console: http://127.0.0.1:${port}/console`);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { worker: boolean }).worker).toBe(false);
    t.type("exit(0)\r");
    expect(await t.exited).toBe(0);
  });

  it("a port in use is one line under the banner, and the shell runs on", async () => {
    const held = await heldPort();
    try {
      const t = terminalShell(["--no-worker"], shellEnv(`http://127.0.0.1:${held.port}`));
      await t.waitFor(/>>> /);
      // (the screen is the raw output: a line printed above the prompt comes after its redraw codes)
      const lines = t.screen().split(/\r?\n/).filter((l) => l.includes("not serving")).map((l) => l.slice(l.indexOf("not serving")));
      expect(lines).toEqual([`not serving the REST API and console: 127.0.0.1:${held.port} is in use (another jobshell?); --no-serve hides this line`]);
      expect(t.screen()).not.toContain("console: http");
      t.type("1 + 1\r\r");
      await t.waitFor(/[J\n]2\r?\n/);
      t.type("exit(0)\r");
      expect(await t.exited).toBe(0);
      // piped, it says nothing: the shell's output is the blocks' alone
      const run = await pipedShell("print(6 * 7)\n", [], shellEnv(`http://127.0.0.1:${held.port}`));
      expect(run).toMatchObject({ code: 0, stdout: "42\n", stderr: "" });
    } finally {
      await held.release();
    }
  });

  it("--no-serve serves nothing and says nothing", async () => {
    const port = await freePort();
    const t = terminalShell(["--no-serve", "--no-worker"], shellEnv(`http://127.0.0.1:${port}`));
    await t.waitFor(/>>> /);
    expect(t.screen()).not.toMatch(/console: http|not serving/);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    t.type("exit(0)\r");
    expect(await t.exited).toBe(0);
  });
});

describe("jobshell serve: read-only", { timeout: 30_000 }, () => {
  it("--read-only answers writes 403 read_only and says so in its line", async () => {
    const s = start(["--port", "0", "--read-only", "--jobs", "samples/jobs/example.yaml"]);
    const url = await s.url;
    const post = await fetch(`${url}/tasks`, { method: "POST", body: '{"topic": "hello"}' });
    expect(post.status).toBe(403);
    expect(((await post.json()) as { error: string }).error).toBe("read_only");
    expect((await fetch(`${url}/jobs/example`, { method: "DELETE" })).status).toBe(403);
    expect((await fetch(`${url}/jobs`)).status).toBe(200);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    expect(s.output()).toMatch(/read-only; console: http:\/\/127\.0\.0\.1:\d+\/console\)/);
  });

  it("JOBSHELL_API_READ_TOKEN reads but does not write", async () => {
    const s = start(["--port", "0"], { JOBSHELL_API_TOKEN: "full-token", JOBSHELL_API_READ_TOKEN: "reader" });
    const url = await s.url;
    const reader = { authorization: "Bearer reader" };
    expect((await fetch(`${url}/tasks`, { headers: reader })).status).toBe(200);
    const post = await fetch(`${url}/tasks`, { method: "POST", headers: reader, body: '{"topic": "t"}' });
    expect(post.status).toBe(403);
    expect((await fetch(`${url}/tasks`, { method: "POST", headers: { authorization: "Bearer full-token" }, body: '{"topic": "t"}' })).status).toBe(201);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  });
});
