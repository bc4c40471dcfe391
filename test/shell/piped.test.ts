// The shell driven as a user drives it with a pipe: `jobshell < file`, through the real command line.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { cli, pipeToShell, requireBuild, root } from "./pipe.js";
import { backends, deleteRedisNamespace, redisUrl, requireServer, uniqueNamespace } from "../each-backend.js";

const redis = backends.find((b) => b.name === "redis")!;

const jobshell = (input: string, args: string[] = ["--jobs", "samples/jobs"], env: NodeJS.ProcessEnv = {}) => pipeToShell(input, args, env);

const slowJob = `
- name: slow
  topics: [slow]
  script: |-
    await sleep(1)
    qprint("slow job done", task.content.n)
`;

beforeAll(requireBuild);

describe("the shell with piped input", { timeout: 60_000 }, () => {
  it("runs the source's tutorial: Hello, amuro and Bye, amuro, exit code 0", async () => {
    const run = await jobshell(readFileSync(path.join(root, "samples/tutorial.txt"), "utf8"));
    expect(run.stdout).toContain("status: completed");
    // As the README shows it: the two qprint lines and the last block's value, a taskid (in any order).
    const end = run.stdout.slice(run.stdout.indexOf("debug channel connected\n")).split("\n").slice(1, -1);
    expect(end.sort()).toEqual([expect.stringMatching(/^'[0-9a-f]{32}'$/), "Bye, amuro", "Hello, amuro"]);
    expect(run.code).toBe(0);
  });

  it("runs the tutorial without the sample jobs too: it uploads the job it needs", async () => {
    const run = await jobshell(readFileSync(path.join(root, "samples/tutorial.txt"), "utf8"), []);
    expect(run.stdout).toContain("Hello, amuro");
    expect(run.stdout).toContain("Bye, amuro");
    expect(run.code).toBe(0);
  });

  it("prints the exact debug() messages of the source's shell", async () => {
    const run = await jobshell("debug()\ndebug()\n");
    expect(run.stdout.split("\n").slice(0, 3)).toEqual([
      "Disconnected the currently subscribed channel and connected to the debug channel ['xaas.hotspot.channel']",
      "debug channel connected",
      "Disconnected the debug channel ['xaas.hotspot.channel']",
    ]);
  });

  it("shows no prompts, banner or colours when the input is not a terminal", async () => {
    const run = await jobshell("1 + 1\n\n");
    expect(run.stdout).toBe("2\n");
    expect(run.code).toBe(0);
  });

  it("keeps declared names across blocks and lets the same block be pasted twice", async () => {
    const block = 'const t = await task("greet", dict(name="a"))\nlet { status } = await waitfor(t)\n';
    const run = await jobshell(`${block}\n${block}\nstatus\n\n`);
    expect(run.stderr).toBe("");
    expect(run.stdout).toBe("'completed'\n");
    expect(run.code).toBe(0);
  });

  it("says at once that no job handles a topic, with the nearest one; the task completes with no results", async () => {
    const job = "- name: late\n  topics: [helo]\n  script: return 'late'";
    const input = [
      't = await task("helo", dict(name="typo"))',
      'print("issued")',
      "r = await waitfor(t)",
      "print(r.status, r.results.length)",
      "",
      `await upload(\`${job}\`)`,
      'r = await waitfor(await task("helo"))',
      "print(r.status, r.results[0].value)",
      "",
    ].join("\n");
    const run = await jobshell(input);
    expect(run.stdout).toBe("warning: no job handles topic 'helo' (did you mean 'hello'?)\nissued\ncompleted 0\ncompleted late\n");
    expect(run.code).toBe(0);
  });

  it("keeps the last value shown in _, until a block assigns _ itself", async () => {
    const run = await jobshell('1 + 1\n\n_ * 10\n\nlet n = 3\n\n_\n\n_ = "mine"\n\n5\n\n_\n\n');
    expect(run.stdout).toBe("2\n20\n20\n'mine'\nExpression assignment to _ now disabled.\n5\n'mine'\n");
  });

  it("accepts Python-style keyword arguments, True, False, None and json", async () => {
    const input = [
      'print(MU(name="Amuro Ray", age=18).yaml_format, end="")',
      'print(json.dumps(dict(ok=True, no=False, nothing=None)))',
      'r = await waitfor(await task("greet", dict(name="kw"), expire=30), timeout=10)',
      "print(r.results[0].value, r.expire)",
      "",
    ].join("\n");
    const run = await jobshell(input);
    expect(run.stdout).toBe('name: Amuro Ray\nage: 18\n{"ok":true,"no":false,"nothing":null}\nHello, kw 30\n');
    expect(run.code).toBe(0);
  });

  it("takes object literals typed in the shell wherever a plain object is expected", async () => {
    const input = [
      'm = MU(name="x")',
      "print(m.plus({y: 2}).dictionary)",
      "m.merge({inner: {z: 3}})",
      "print(m.inner.z)",
      'r = await waitfor(await task("greet", m.plus({name: "literal"})), timeout=10)',
      "print(r.results[0].value)",
      "",
    ].join("\n");
    const run = await jobshell(input);
    expect(run.stdout).toBe("{ name: 'x', y: 2 }\n3\nHello, literal\n");
    expect(run.code).toBe(0);
  });

  it("reports an error with the block's line, carries on with the next block, and exits 1", async () => {
    const run = await jobshell('x = 1\nawait task(5)\n\nprint("still here")\n\n');
    expect(run.stdout).toContain("TypeError: task(): topic must be a non-empty string, got 5");
    expect(run.stdout).toContain("at line 2, column 7 of the block: await task(5)");
    expect(run.stdout).toContain("(line 2 of the input)");
    expect(run.stdout).not.toMatch(/node:internal|dist\//);
    expect(run.stdout).toContain("still here");
    expect(run.code).toBe(1);
  });

  it("reports a syntax error at once with its line and column, and drops that block", async () => {
    const run = await jobshell('a = 1\nb = (2))\nprint("next block")\n\n');
    expect(run.stdout).toContain("SyntaxError: Unexpected token");
    expect(run.stdout).toContain("at line 2, column 8 of the block: b = (2))");
    expect(run.stdout).toContain("(line 2 of the input)");
    expect(run.stdout).toContain("next block");
    expect(run.code).toBe(1);
  });

  it("takes the lines after a syntax error as the next block, with their lines in the input", async () => {
    const run = await jobshell('a = 1\nb = (2))\nc = 3\nd = ]\nprint("after", typeof a)\n\nprint(typeof c)\n\n');
    expect(run.stdout).toBe(
      [
        "SyntaxError: Unexpected token",
        "    at line 2, column 8 of the block: b = (2))",
        "    (line 2 of the input)",
        "    the lines after it start a new block, at line 3 of the input: c = 3",
        "SyntaxError: Unexpected token",
        "    at line 2, column 5 of the block: d = ]",
        "    (line 4 of the input)",
        "    the lines after it start a new block, at line 5 of the input: print(\"after\", typeof a)",
        "after undefined",
        "undefined",
        "",
      ].join("\n"),
    );
    expect(run.code).toBe(1);
  });

  it("reports a block left open at the end of the input where the input ends", async () => {
    const run = await jobshell("x = {\n  a: 1,\n\n");
    expect(run.stdout).toBe("SyntaxError: Unexpected end of input\n    at line 2, column 8 of the block: a: 1,\n    (line 2 of the input)\n");
    expect(run.code).toBe(1);
  });

  it("takes a block of 3,000 lines in a few seconds (it is not parsed again at every line)", async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => `total += Math.max(${i}, 1);`);
    const started = Date.now();
    const run = await jobshell(`total = 0\n${lines.join("\n")}\n\ntotal\n\n`);
    const total = 1 + (2999 * 3000) / 2;
    // The block's last line is an expression too: its value, then that of `total`.
    expect(run.stdout).toBe(`${total}\n${total}\n`);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("keeps reading an unfinished block across empty lines", async () => {
    const run = await jobshell("const x = [1,\n\n2]\n\nx.length\n\n");
    expect(run.stdout).toBe("2\n");
  });

  it("shows a rejected promise without the shell's own stack frames, at its place in the block", async () => {
    const run = await jobshell('task(42)\n\np = Promise.reject(new Error("boom"))\n\nwaitfor("nope")\n\n');
    const shown = run.stdout.slice(0, run.stdout.indexOf("Uncaught"));
    expect(shown).toBe(
      [
        "Promise {",
        "  <rejected> TypeError: task(): topic must be a non-empty string, got 42",
        "      at <shell>:1:1",
        "}",
        "task() returns a promise: did you forget await? (await task(...) gives its value)",
        "Promise {",
        "  <rejected> Error: boom",
        "      at <shell>:1:20",
        "}",
        "Promise {",
        "  <rejected> UnknownTaskError: unknown task nope (never issued, or its record is older than task_record_ttl) {",
        "    code: 'UNKNOWN_TASK',",
        "    taskid: 'nope'",
        "  }",
        "}",
        "waitfor() returns a promise: did you forget await? (await waitfor(...) gives its value)",
        "",
      ].join("\n"),
    );
  });

  it("says 'did you forget await?' for a field read from a builtin's promise, and under one shown", async () => {
    const input = 't = await task("hello", dict(name="x"))\nrecord(t).status\n\n(await record(t)).topic\n\n';
    const run = await jobshell(input);
    expect(run.stdout).toContain("TypeError: record() returns a promise: did you forget await? (await record(...)).status\n");
    expect(run.stdout).toMatch(/\n'hello'\n$/);
    const shown = await jobshell('p = record("0".repeat(32))\np\n\n');
    expect(shown.stdout).toBe("Promise { undefined }\nrecord() returns a promise: did you forget await? (await record(...) gives its value)\n");
  });

  it("gives builtins' promises that await and Promise.all in the shell take as their own", async () => {
    const input = [
      'p = record("0".repeat(32))',
      "print(p.constructor === Promise, (await Promise.all([p, p])).length, await p.then(r => r ?? 'none'))",
      "",
    ].join("\n");
    const run = await jobshell(input);
    expect(run.stdout).toBe("true 2 none\n");
  });

  it("survives a promise nobody awaited that fails", async () => {
    const run = await jobshell('task("")\n\nprint("alive")\n\n');
    expect(run.stdout).toContain("topic must be a non-empty string");
    expect(run.stdout).toContain("alive");
  });

  it("reports a promise nobody awaited that fails in the last block, and exits 1", async () => {
    const run = await jobshell('Promise.reject(new Error("boom"))\n1+1\n');
    expect(run.stdout).toBe("2\nUncaught (in promise): Error: boom\n");
    expect(run.stderr).not.toContain("Node.js v");
    expect(run.code).toBe(1);
  });

  it("waits for a thousand waitfor() in one block without a listener warning", async () => {
    const input = "const ids = await Promise.all([...Array(1000)].map((_, n) => task('hello', dict(name=String(n)))))\n\n" +
      "(await Promise.all(ids.map((id) => waitfor(id)))).filter((r) => r.status == 'completed').length\n";
    const run = await jobshell(input);
    expect(run.stdout).toBe("1000\n");
    expect(run.stderr).not.toContain("MaxListenersExceededWarning");
    expect(run.code).toBe(0);
  });

  it("takes waitfor()'s timeout as a number, a keyword argument or {timeout}, as job scripts do", async () => {
    const input = [
      `await upload(\`${slowJob}\`)`,
      'const t = await task("slow", dict(n=1))',
      "const late = []",
      "for (const wait of [() => waitfor(t, {timeout: 0.1}), () => waitfor(t, timeout=0.1), () => waitfor(t, 0.1)]) {",
      "  try { await wait() } catch (e) { late.push(e.name) }",
      "}",
      'print(late.join(" "), (await waitfor(t, {timeout: 10})).status)',
      "",
    ].join("\n");
    const run = await jobshell(input, []);
    expect(run.stdout).toBe("TimeoutError TimeoutError TimeoutError completed\n");
    expect(run.code).toBe(0);
  });

  it("runs the tasks issued without await before the input ends", async () => {
    const input = `await upload(\`${slowJob}\`)\n\ndebug()\nPromise.all([1, 2, 3].map((n) => task("slow", dict(n=n))))\n`;
    const run = await jobshell(input);
    for (const n of [1, 2, 3]) expect(run.stdout).toContain(`slow job done ${n}`);
    expect(run.code).toBe(0);
  });

  it("runs the last block at the end of the input and waits for the tasks it issued, so their debug output is shown", async () => {
    const input = `await upload(\`${slowJob}\`)\n\ndebug()\nawait task("slow", dict(n=1))\nawait task("slow", dict(n=2))`;
    const run = await jobshell(input);
    expect(run.stdout).toContain("slow job done 1");
    expect(run.stdout).toContain("slow job done 2");
    expect(run.code).toBe(0);
  });

  it("waits at the end of the input no longer than the tasks' expire when no worker takes them", async () => {
    const began = Date.now();
    const run = await jobshell('debug()\nt = await task("hello", dict(name="nobody"), expire=1)\n', ["--jobs", "samples/jobs", "--no-worker"]);
    expect(run.stdout).not.toContain("Hello, nobody");
    expect(run.code).toBe(0);
    expect(Date.now() - began).toBeLessThan(15_000);
  });

  it("adds jobs at run time with upload() and load(), and lists them with jobs()", async () => {
    const input = `await upload(\`${slowJob}\`)\n\nawait load("samples/jobs/failure.yaml")\n\njobs()\n`;
    const run = await jobshell(input, []);
    expect(run.stdout).toContain("[ 'slow' ]");
    expect(run.stdout).toContain("[ 'divide' ]");
    expect(run.stdout).toMatch(/slow\s+topics: slow/);
    expect(run.stdout).toMatch(/divide\s+topics: divide/);
  });

  it("loads the jobs it started with again as a no-op; a changed one names replace=True", async () => {
    const changed = "- name: example\n  topics: [hello]\n  script: return 'changed'";
    const run = await jobshell(`(await load("samples/jobs")).length\n\nawait upload(\`${changed}\`)\n\n`);
    expect(run.stdout).toMatch(/^11\nJobDefinitionError: /);
    expect(run.stdout).toContain("job example already exists, different (from samples/jobs/example.yaml); to replace it, pass replace: true (replace=True in the shell");
    expect(run.stdout.match(/already exists/g)).toHaveLength(1);
  });

  it("says in one line that jobs on Transaction.* topics get no task while job_transaction_event is off", async () => {
    const input = '(await load("samples/jobs/saga.yaml")).length\n\n';
    const off = await jobshell(input, []);
    expect(off.stdout).toBe(
      "warning: jobs saga-reserve-stock, saga-compensate, saga-report answer Transaction.* topics, but job_transaction_event is off: " +
        "no such task is issued (start with --job-transaction-event)\n4\n",
    );
    const on = await jobshell(input, ["--job-transaction-event"]);
    expect(on.stdout).toBe("4\n");
  });

  it("says which builtin got a wrong argument and what it takes", async () => {
    const run = await jobshell("await upload(42)\n\nawait upload(dict(a=1))\n\nawait load(42)\n\n");
    expect(run.stdout).toContain("TypeError: upload(): takes YAML text (a string), got 42\n");
    expect(run.stdout).toContain("TypeError: upload(): takes YAML text (a string), got an object\n");
    expect(run.stdout).toContain("TypeError: load(): takes a path or a list of paths (strings), got 42\n");
    expect(run.code).toBe(1);
  });

  it("stops at exit(n) with that exit code", async () => {
    const run = await jobshell('print("before")\n\nexit(3)\nprint("after")\n\n');
    expect(run.stdout).toBe("before\n");
    expect(run.code).toBe(3);
  });

  it("calls out over HTTP with keyword arguments, as in the source's tutorial", async () => {
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ taskid: "abc", method: req.method, path: req.url, got: JSON.parse(body) }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const input = [
        `r = await callout(url="http://127.0.0.1:${port}", path="/tasks", method="POST", body={"topic": "hello.job", "content": {"arg": "hello"}, "expire": 10})`,
        'taskid = json.loads(r.body)["taskid"]',
        "print(r.code, taskid, r.body)",
        "",
      ].join("\n");
      const run = await jobshell(input);
      expect(run.stdout).toBe(
        '201 abc {"taskid":"abc","method":"POST","path":"/tasks","got":{"topic":"hello.job","content":{"arg":"hello"},"expire":10}}\n',
      );
    } finally {
      server.close();
    }
  });

  it("stops when a block calls exit(), with its code", async () => {
    const run = await jobshell('for (const n of [1, 2]) { print(n); if (n == 2) exit(4) }\n\nprint("after")\n\n');
    expect(run.stdout).toBe("1\n2\n");
    expect(run.code).toBe(4);
  });

  it("ends when nobody reads its output any more (jobshell < file | head -1)", async () => {
    const input = 'print("x".repeat(1000))\n\n'.repeat(5000);
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [cli], { cwd: root, env: { ...process.env, JOBSHELL_HISTORY: "", REDIS_URL: "", AMQP_URL: "" } });
      child.stdout.once("data", () => child.stdout.destroy());
      child.stdin.on("error", () => {}); // it may stop reading before all of it is written
      child.on("error", reject);
      child.on("close", resolve);
      child.stdin.end(input);
    });
    expect(code).toBe(1);
  });

  it("returns stats() as a value shown as its table, the queue's view apart from this process's", async () => {
    const run = await jobshell('s = await stats()\nprint(s.issued, s.queueDepth, s.worker)\n\nawait task("hello", expire=0.5)\n\nstats()\n');
    expect(run.stdout).toMatch(/^0 0 true\n'[0-9a-f]{32}'\n/);
    expect(run.stdout).toMatch(/the queue \(every process\):\n\s+queueDepth:\s+\d+\s+tasks waiting\n/);
    expect(run.stdout).toMatch(/this process \(worker in this process\):\n\s+issued:\s+1 /);
    expect(run.code).toBe(0);
  });

  it("on Redis with --no-worker, stats() shows the queue's depth and says the counters are this process's", async () => {
    if (!(await requireServer(redis))) return;
    const prefix = uniqueNamespace("stats");
    try {
      const args = ["--jobs", "samples/jobs", "--redis", redisUrl, "--redis-prefix", prefix, "--no-worker"];
      const run = await jobshell('await task("hello", expire=0.5)\n\nstats()\n', args);
      expect(run.stdout).toMatch(/queueDepth:\s+1\s+tasks waiting/);
      expect(run.stdout).toContain(`queues:     {${prefix}}:normal 1, {${prefix}}:recovery 0\n`);
      expect(run.stdout).toContain("workers:    0\n");
      expect(run.stdout).toContain("this process (no worker in this process: --no-worker):");
      expect(run.stdout).toMatch(/issued:\s+1 /);
      expect(run.code).toBe(0);
    } finally {
      await deleteRedisNamespace(prefix);
    }
  });

  it("shows stats() and the help texts", async () => {
    const run = await jobshell("stats()\nhelp()\ncommands()\n");
    expect(run.stdout).toMatch(/mode:\s+memory/);
    expect(run.stdout).toContain("an empty line runs the whole block");
    expect(run.stdout).toMatch(/waitfor\(taskid, timeout=60\)/);
    expect(run.code).toBe(0);
  });
});
