// The REST API over real sockets: every endpoint, every refusal, and the server keeps
// serving after each.
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as errors from "../../src/errors.js";
import { errorReplies, errorWordOf, ParameterError } from "../../src/errors.js";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve } from "../../src/server/index.js";

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

function call(base: string, method: string, path: string, options: { body?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, base), { method, headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

const jsonHeaders = { "content-type": "application/json" };

const jobs = `
- name: greet
  topics: [hello]
  script: return "Hello, " + task.content.name
- name: slow
  topics: [slow]
  script: await sleep(task.content.seconds); return "slept"
`;

describe("REST API", () => {
  let js: JobShell;
  let base: string;
  let close: () => Promise<void>;
  const logged: string[] = [];

  beforeAll(async () => {
    js = await open({ log: () => {} });
    await js.upload(jobs);
    const server = await serve(js, { port: 0, host: "127.0.0.1", log: (l) => logged.push(l) });
    base = server.url;
    close = server.close;
  });

  afterAll(async () => {
    await close?.();
    await js?.close();
  });

  const stillServes = async () => expect((await call(base, "GET", "/healthz")).status).toBe(200);

  it("POST /tasks issues a task and answers 201 with its taskid", async () => {
    const r = await call(base, "POST", "/tasks", { body: JSON.stringify({ topic: "hello", content: { name: "amuro" }, expire: 10 }), headers: jsonHeaders });
    expect(r.status).toBe(201);
    expect(r.json.taskid).toMatch(/^[0-9a-f]{32}$/);
    expect(r.headers.location).toBe(`/tasks/${r.json.taskid}`);
    const done = await call(base, "GET", `/tasks/${r.json.taskid}/wait?timeout=10`);
    expect(done.status).toBe(200);
    expect(done.headers["x-jobshell-ended"]).toBe("true");
    expect(done.json).toMatchObject({ taskid: r.json.taskid, topic: "hello", status: "completed", results: [{ job: "greet", status: "completed", value: "Hello, amuro" }] });
    const again = await call(base, "GET", `/tasks/${r.json.taskid}`);
    expect(again.status).toBe(200);
    expect(again.json.status).toBe("completed");
    expect(again.json.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$/);
  });

  it("POST /tasks takes only topic; content and expire have their defaults", async () => {
    const r = await call(base, "POST", "/tasks", { body: JSON.stringify({ topic: "nobody.listens" }) });
    expect(r.status).toBe(201);
    const record = await call(base, "GET", `/tasks/${r.json.taskid}`);
    expect(record.json).toMatchObject({ expire: 10, content: {} });
  });

  it("bad JSON is a 400 invalid_json, and the server keeps serving", async () => {
    const r = await call(base, "POST", "/tasks", { body: '{"topic": "hello",', headers: jsonHeaders });
    expect(r.status).toBe(400);
    expect(r.json.error).toBe("invalid_json");
    expect(r.json.detail).toContain("not valid JSON");
    await stillServes();
  });

  it("wrong types are one 400 invalid_body naming every field at fault", async () => {
    const r = await call(base, "POST", "/tasks", { body: JSON.stringify({ topic: 5, content: [1], expire: -1 }), headers: jsonHeaders });
    expect(r.status).toBe(400);
    expect(r.json.error).toBe("invalid_body");
    expect(r.json.detail).toContain("topic must be a string, got number");
    expect(r.json.detail).toContain("content must be an object, got array");
    expect(r.json.detail).toContain("expire must be a positive number of seconds, got -1");
    await stillServes();
  });

  it("a missing topic, an empty one, an unknown field or a non-object body are 400s", async () => {
    for (const body of [{}, { topic: "" }, { topic: "hello", expires: 3 }, [1, 2], "text", null]) {
      const r = await call(base, "POST", "/tasks", { body: JSON.stringify(body), headers: jsonHeaders });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toBe("invalid_body");
      expect(typeof r.json.detail).toBe("string");
    }
    const unknown = await call(base, "POST", "/tasks", { body: JSON.stringify({ topic: "hello", expires: 3 }) });
    expect(unknown.json.detail).toContain('unknown field "expires"');
    await stillServes();
  });

  it("a field named after an Object.prototype property is an unknown field too", async () => {
    for (const key of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      const r = await call(base, "POST", "/tasks", { body: `{"topic":"x","${key}":1}`, headers: jsonHeaders });
      expect(r.status, key).toBe(400);
      expect(r.json.error).toBe("invalid_body");
      expect(r.json.detail).toContain(`unknown field "${key}"`);
    }
    await stillServes();
  });

  it("content that is not JSON data after parsing is still checked (no 5xx)", async () => {
    const r = await call(base, "POST", "/tasks", { body: JSON.stringify({ topic: "hello", expire: 1e400 }), headers: jsonHeaders });
    expect(r.status).toBe(400);
  });

  it("content nested deeper than 100 levels is a 400, not a server error", async () => {
    const depth = 200_000;
    const body = `{"topic":"x","content":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
    const r = await call(base, "POST", "/tasks", { body, headers: jsonHeaders });
    expect(r.status).toBe(400);
    expect(r.json.detail).toContain("nested deeper than 100 levels");
    const fine = await call(base, "POST", "/tasks", { body: `{"topic":"x","content":{"a":${"[".repeat(90)}${"]".repeat(90)}}}` });
    expect(fine.status).toBe(201);
    await stillServes();
  });

  it("a body that is not JSON by its media type is a 415", async () => {
    const r = await call(base, "POST", "/tasks", { body: "topic=hello", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(r.status).toBe(415);
    expect(r.json.error).toBe("unsupported_media_type");
    await stillServes();
  });

  it("GET /tasks/{id} of an unknown task is 404 unknown_task; a malformed id is 400", async () => {
    const unknown = await call(base, "GET", `/tasks/${"0".repeat(32)}`);
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toBe("unknown_task");
    const malformed = await call(base, "GET", "/tasks/not-a-taskid");
    expect(malformed.status).toBe(400);
    expect(malformed.json.error).toBe("invalid_taskid");
    const unknownWait = await call(base, "GET", `/tasks/${"0".repeat(32)}/wait?timeout=1`);
    expect(unknownWait.status).toBe(404);
    await stillServes();
  });

  it("a wait that times out answers 200 with the record as it is, not ended", async () => {
    const r = await call(base, "POST", "/tasks", { body: JSON.stringify({ topic: "slow", content: { seconds: 3 } }) });
    const began = Date.now();
    const waited = await call(base, "GET", `/tasks/${r.json.taskid}/wait?timeout=0.5`);
    expect(Date.now() - began).toBeGreaterThanOrEqual(400);
    expect(waited.status).toBe(200);
    expect(waited.headers["x-jobshell-ended"]).toBe("false");
    expect(["queued", "started"]).toContain(waited.json.status);
    expect(waited.json.completedAt).toBeUndefined();
    await stillServes();
  });

  it("a wait timeout that is not a number of seconds is a 400", async () => {
    // only plain decimals: no hex, exponent, sign or blanks that Number() would take
    for (const timeout of ["abc", "-1", "", "99999", "0x10", "1e3", "+5", "%205", "Infinity"]) {
      const r = await call(base, "GET", `/tasks/${"0".repeat(32)}/wait?timeout=${timeout}`);
      expect(r.status, timeout).toBe(400);
      expect(r.json.error).toBe("invalid_query");
    }
  });

  it("a plain decimal wait timeout is taken, fractions and 0 included", async () => {
    const r = await call(base, "POST", "/tasks", { body: JSON.stringify({ topic: "hello", content: { name: "x" } }) });
    for (const timeout of ["0", "0.25", "10"]) {
      const waited = await call(base, "GET", `/tasks/${r.json.taskid}/wait?timeout=${timeout}`);
      expect(waited.status, timeout).toBe(200);
    }
  });

  it("POST /jobs adds jobs all or nothing; a name in use, changed, is 409 unless ?replace=true", async () => {
    const yaml = "- name: up1\n  topics: [up]\n  script: return 1\n";
    const added = await call(base, "POST", "/jobs", { body: yaml, headers: { "content-type": "application/yaml" } });
    expect(added.status).toBe(201);
    expect(added.json.jobs).toEqual(["up1"]);
    expect((await call(base, "POST", "/jobs", { body: yaml })).status).toBe(201);
    const twice = await call(base, "POST", "/jobs", { body: yaml.replace("[up]", "[up, down]") });
    expect(twice.status).toBe(409);
    expect(twice.json).toMatchObject({ error: "job_exists", jobs: ["up1"] });
    const replaced = await call(base, "POST", "/jobs?replace=true", { body: yaml.replace("return 1", "return 2") });
    expect(replaced.status).toBe(201);
    const t = await call(base, "POST", "/tasks", { body: JSON.stringify({ topic: "up" }) });
    const done = await call(base, "GET", `/tasks/${t.json.taskid}/wait?timeout=10`);
    expect(done.json.results[0].value).toBe(2);
    const badReplace = await call(base, "POST", "/jobs?replace=maybe", { body: yaml });
    expect(badReplace.status).toBe(400);
  });

  it("an invalid job file is a 400 job_definition listing the problems, and nothing is applied", async () => {
    const yaml = "- name: ok-one\n  topics: [a]\n  script: return 1\n- name: bad-one\n  topics: []\n  scirpt: x\n";
    const r = await call(base, "POST", "/jobs", { body: yaml });
    expect(r.status).toBe(400);
    expect(r.json.error).toBe("job_definition");
    expect(r.json.problems.length).toBeGreaterThanOrEqual(2);
    expect(r.json.problems.some((p: { field?: string }) => p.field === "topics")).toBe(true);
    const list = await call(base, "GET", "/jobs");
    expect(list.json.jobs.map((j: { name: string }) => j.name)).not.toContain("ok-one");
    const syntax = await call(base, "POST", "/jobs", { body: "- name: [unclosed" });
    expect(syntax.status).toBe(400);
    await stillServes();
  });

  it("POST /jobs with no job in it (an empty body, an empty list, only a comment) is a 400 job_definition", async () => {
    for (const body of ["", "[]\n", "# nothing yet\n"]) {
      const r = await call(base, "POST", "/jobs", { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toBe("job_definition");
      expect(r.json.detail).toContain("no job definitions");
      expect(r.json.problems).toHaveLength(1);
    }
    await stillServes();
  });

  it("GET /jobs lists the jobs; DELETE /jobs/{name} removes one, then 404", async () => {
    const list = await call(base, "GET", "/jobs");
    expect(list.status).toBe(200);
    expect(list.json.jobs.find((j: { name: string }) => j.name === "greet")).toMatchObject({ topics: ["hello"], script: expect.any(String) });
    await call(base, "POST", "/jobs", { body: "- name: doomed\n  topics: [d]\n  script: return 1\n" });
    const one = await call(base, "GET", "/jobs/doomed");
    expect(one.json.name).toBe("doomed");
    const removed = await call(base, "DELETE", "/jobs/doomed");
    expect(removed.status).toBe(204);
    const gone = await call(base, "DELETE", "/jobs/doomed");
    expect(gone.status).toBe(404);
    expect(gone.json.error).toBe("unknown_job");
  });

  it("GET /healthz says the mode and the jobs", async () => {
    const r = await call(base, "GET", "/healthz");
    expect(r.json).toMatchObject({ status: "ok", mode: "memory", worker: true });
  });

  it("GET /metrics is Prometheus text: tasks per topic, job runs, run time histogram, queue depth, in flight", async () => {
    const r = await call(base, "GET", "/metrics");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toContain("text/plain; version=0.0.4");
    expect(r.text).toMatch(/^# TYPE jobshell_tasks_issued_total counter$/m);
    expect(r.text).toMatch(/^jobshell_tasks_issued_total\{topic="hello"\} [1-9]\d*$/m);
    expect(r.text).toMatch(/^jobshell_tasks_completed_total\{topic="hello"\} [1-9]\d*$/m);
    expect(r.text).toMatch(/^jobshell_job_runs_total\{job="greet",status="completed"\} [1-9]\d*$/m);
    expect(r.text).toMatch(/^jobshell_job_run_seconds_bucket\{job="greet",le="\+Inf"\} [1-9]\d*$/m);
    expect(r.text).toMatch(/^jobshell_job_run_seconds_count\{job="greet"\} [1-9]\d*$/m);
    expect(r.text).toMatch(/^jobshell_queue_depth \d+$/m);
    expect(r.text).toMatch(/^jobshell_tasks_in_flight \d+$/m);
    // every sample line is `name{labels} value`
    for (const line of r.text.trim().split("\n")) {
      if (!line.startsWith("#")) expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? [-+\d.e]+$/);
    }
  });

  it("an unknown route is 404 and a known one with the wrong method is 405", async () => {
    const r = await call(base, "GET", "/nothing/here");
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ error: "not_found" });
    const m = await call(base, "PUT", "/tasks");
    expect(m.status).toBe(405);
    expect(m.headers.allow).toBe("GET, HEAD, POST");
    // HEAD is answered wherever GET is, so Allow names it there
    const jobs = await call(base, "PUT", "/jobs");
    expect(jobs.status).toBe(405);
    expect(jobs.headers.allow).toBe("GET, HEAD, POST");
    expect((await call(base, "PATCH", "/healthz")).headers.allow).toBe("GET, HEAD");
    expect((await call(base, "HEAD", "/healthz")).status).toBe(200);
    await stillServes();
  });

  it("a body over 1 MiB is refused with 413 from its declared length, before it is sent", async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const url = new URL(base);
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(`POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${50 * 1024 * 1024}\r\n\r\n{"topic":`);
      });
      let text = "";
      socket.on("data", (c) => {
        text += c.toString();
        if (text.includes("\r\n\r\n") && text.includes("}")) resolve(text);
      });
      socket.on("error", reject);
      socket.on("close", () => resolve(text));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(reply).toContain('"error":"payload_too_large"');
    await stillServes();
  });

  it("a chunked body that grows past 1 MiB is refused with 413 as it arrives", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(new URL("/tasks", base), { method: "POST", headers: jsonHeaders }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on("error", () => {}); // the server may end the connection while we still write
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 4 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        req.end();
      };
      pump();
      setTimeout(() => reject(new Error("no answer")), 10_000).unref();
    });
    expect(status).toBe(413);
    await stillServes();
  });

  it("POST /jobs bodies are limited too", async () => {
    const r = await call(base, "POST", "/jobs", { body: `# ${"x".repeat(1024 * 1024 + 10)}\n` });
    expect(r.status).toBe(413);
    await stillServes();
  });

  it("nothing above was a server error", () => {
    expect(logged).toEqual([]);
  });
});

describe("REST API with a token", () => {
  const token = "s3cret-token-value";
  let js: JobShell;
  let base: string;
  let close: () => Promise<void>;
  const logged: string[] = [];

  beforeAll(async () => {
    js = await open({ log: () => {} });
    const server = await serve(js, { port: 0, host: "127.0.0.1", token, log: (l) => logged.push(l) });
    base = server.url;
    close = server.close;
  });

  afterAll(async () => {
    await close?.();
    await js?.close();
  });

  it("every request needs Authorization: Bearer <token>", async () => {
    const missing = await call(base, "GET", "/healthz");
    expect(missing.status).toBe(401);
    expect(missing.json.error).toBe("unauthorized");
    expect(missing.headers["www-authenticate"]).toContain("Bearer");
    const wrong = await call(base, "POST", "/tasks", { body: "{}", headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    const basic = await call(base, "GET", "/metrics", { headers: { authorization: `Basic ${token}` } });
    expect(basic.status).toBe(401);
    const right = await call(base, "GET", "/healthz", { headers: { authorization: `Bearer ${token}` } });
    expect(right.status).toBe(200);
    const issued = await call(base, "POST", "/tasks", { body: '{"topic":"t"}', headers: { authorization: `bearer ${token}` } });
    expect(issued.status).toBe(201);
  });

  it("the token is never sent back nor logged", async () => {
    const wrong = await call(base, "GET", "/healthz", { headers: { authorization: `Bearer ${token}x` } });
    expect(wrong.text).not.toContain(token);
    expect(logged.join("\n")).not.toContain(token);
  });
});

describe("REST API binding", () => {
  it("refuses to listen beyond loopback without a token, in one clear line", async () => {
    const js = await open({ worker: false, log: () => {} });
    try {
      const err = await serve(js, { port: 0, host: "0.0.0.0" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ParameterError);
      expect((err as Error).message).toMatch(/^refusing to listen on 0\.0\.0\.0 without an API token: set JOBSHELL_API_TOKEN/);
      expect((err as Error).message).not.toContain("\n");
      const server = await serve(js, { port: 0, host: "0.0.0.0", token: "t" });
      await server.close();
    } finally {
      await js.close();
    }
  });

  it("closing the server ends a long poll with 503 closing", async () => {
    const js = await open({ worker: false, log: () => {} });
    const server = await serve(js, { port: 0, host: "127.0.0.1" });
    try {
      const taskid = await js.task("never.run", {}, 60);
      const pending = call(server.url, "GET", `/tasks/${taskid}/wait?timeout=60`);
      await new Promise((r) => setTimeout(r, 200));
      await server.close();
      const r = await pending;
      expect(r.status).toBe(503);
      expect(r.json.error).toBe("closing");
    } finally {
      await js.close();
    }
  });

  it("never shows a Slack job's token", async () => {
    const js = await open({ worker: false, log: () => {} });
    const server = await serve(js, { port: 0, host: "127.0.0.1" });
    try {
      await js.upload("- name: bot\n  topics: [amuro]\n  script: return 1\n  slack:\n    token: xoxb-very-secret\n");
      const r = await call(server.url, "GET", "/jobs");
      expect(r.json.jobs[0]).toMatchObject({ name: "bot", slack: { code_injection: false } });
      expect(r.text).not.toContain("xoxb-very-secret");
    } finally {
      await server.close();
      await js.close();
    }
  });
});

describe("REST API documentation", () => {
  it("docs/rest-api.md lists every error word the server can answer with", () => {
    const words = Object.keys(errorReplies);
    expect(words.length).toBeGreaterThan(10);
    const docs = readFileSync("docs/rest-api.md", "utf8");
    for (const word of words) expect(docs, word).toContain(`\`${word}\``);
  });

  it("every error class is answered with one word of the table, and a class it does not know with internal", () => {
    const classes = Object.values(errors).filter((v) => typeof v === "function" && v.prototype instanceof errors.JobshellError);
    const listed = Object.values(errorReplies).flatMap((reply: errors.ErrorReply) => reply.classes ?? []);
    expect(new Set(listed).size).toBe(listed.length);
    expect(new Set(listed)).toEqual(new Set(classes));
    expect(errorWordOf(new errors.QueueFullError(5))).toBe("queue_full");
    expect(errorWordOf(new errors.ClosedError())).toBe("closing");
    expect(errorWordOf(new (class extends errors.ConnectionError {})("gone"))).toBe("unavailable");
    expect(errorWordOf(new errors.JobshellError("what"))).toBe("internal");
    expect(errorWordOf(new Error("what"))).toBe("internal");
    expect(errorWordOf("what")).toBe("internal");
  });
});
