// One workload through each of jobshell's doors, memory mode, scripts isolated (the default): TASKS
// no-op tasks all issued, then every record awaited (`ids = await Promise.all(...task())`, then
// `await Promise.all(ids.map(id => waitfor(id)))`):
// - the library: open() in this process;
// - the shell: `jobshell` with those two statements piped into it, timed inside the shell, so its
//   start-up is not counted (a blank line after each round tells it the last statement is complete);
// - the REST API: `jobshell serve`'s server in this process, a client process POSTing /tasks for each
//   task on CONNECTIONS keep-alive connections, then GETting /tasks/{id}/wait for each.
// In turns, REPEAT rounds after one warm-up; prints medians and each door's ratio to the library.
// Run: npm run build && node bench/doors.js   (REPEAT=5, TASKS=10000, CONNECTIONS=32; DOORS=library,shell
// for some of the doors only)
import { fork, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { open } from "../dist/index.js";
import { serve } from "../dist/server/index.js";
import { printTable, ratio, spread } from "./stats.js";

const repeat = Number(process.env.REPEAT ?? 5);
const tasks = Number(process.env.TASKS ?? 10_000);
const connections = Number(process.env.CONNECTIONS ?? 32);
const only = new Set((process.env.DOORS ?? "library,shell,rest").split(","));
const noop = `- {name: noop, topics: [noop], script: "return"}`;
const here = fileURLToPath(import.meta.url);

if (process.argv[2] === "client") await client(process.argv[3]);
else await main();

/** The REST client, in a process of its own: every POST, then every wait; sends the seconds taken. */
async function client(url) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const send = (method, where, payload) =>
    new Promise((resolve, reject) => {
      const headers = payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {};
      const req = request(new URL(where, url), { method, agent, headers }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => (res.statusCode < 300 ? resolve(text) : reject(new Error(`${method} ${where}: ${res.statusCode} ${text}`))));
      });
      req.on("error", reject);
      req.end(payload);
    });
  /** `count` calls of `one(i)`, at most `connections` at once. */
  const pool = async (count, one) => {
    const out = new Array(count);
    let next = 0;
    await Promise.all(Array.from({ length: connections }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await one(i);
      }
    }));
    return out;
  };
  const body = JSON.stringify({ topic: "noop", content: {}, expire: 60 });
  process.on("message", async () => {
    const began = performance.now();
    const ids = await pool(tasks, () => send("POST", "/tasks", body).then((text) => JSON.parse(text).taskid));
    const records = await pool(tasks, (i) => send("GET", `/tasks/${ids[i]}/wait?timeout=120`).then(JSON.parse));
    const seconds = (performance.now() - began) / 1000;
    const bad = records.find((r) => r.status !== "completed");
    if (bad) throw new Error(`task ${bad.taskid} ended ${bad.status}`);
    process.send(seconds);
  });
  process.send("ready");
}

/** The library in this process. */
async function libraryDoor() {
  const js = await open({ jobQueueSize: tasks + 1, log: () => {} });
  await js.upload(noop);
  return {
    async round() {
      const began = performance.now();
      const ids = await Promise.all(Array.from({ length: tasks }, () => js.task("noop", {}, 60)));
      const records = await Promise.all(ids.map((id) => js.waitfor(id, 120)));
      const seconds = (performance.now() - began) / 1000;
      if (records.some((r) => r.status !== "completed")) throw new Error("a task did not complete");
      return tasks / seconds;
    },
    close: () => js.close(),
  };
}

/** The shell, its input piped: each round is two statements written to it, timed by the shell. */
async function shellDoor(dir) {
  const jobs = path.join(dir, "noop.yaml");
  writeFileSync(jobs, noop);
  const cli = path.join(path.dirname(here), "..", "dist", "cli.js");
  const child = spawn(process.execPath, [cli, "--jobs", jobs], {
    env: { ...process.env, JOBSHELL_HISTORY: "", NO_COLOR: "1", REDIS_URL: "", AMQP_URL: "" },
    stdio: ["pipe", "pipe", "inherit"],
  });
  let seen = "";
  let answered;
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (text) => {
    seen += text;
    const found = /round (\S+) (\S+)\n/.exec(seen);
    if (!found) return;
    seen = seen.slice(found.index + found[0].length);
    answered?.(found);
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  let n = 0;
  return {
    async round() {
      n += 1;
      const answer = new Promise((resolve) => (answered = resolve));
      child.stdin.write(
        `began = performance.now()\n` +
          `ids = await Promise.all(Array.from({length: ${tasks}}, () => task("noop", {}, 60)))\n` +
          `records = await Promise.all(ids.map(id => waitfor(id, 120)))\n` +
          `print("round", ${n}, records.every(r => r.status == "completed") ? (performance.now() - began) / 1000 : "failed")\n\n`,
      );
      const found = await answer;
      if (found[2] === "failed") throw new Error("the shell: a task did not complete");
      return tasks / Number(found[2]);
    },
    async close() {
      child.stdin.end();
      await exited;
    },
  };
}

/** The REST API: the server in this process, the client in another. */
async function restDoor() {
  const js = await open({ jobQueueSize: tasks + 1, log: () => {} });
  await js.upload(noop);
  const server = await serve(js, { port: 0, host: "127.0.0.1" });
  const child = fork(here, ["client", server.url], { env: { ...process.env, TASKS: String(tasks), CONNECTIONS: String(connections) } });
  const next = () => new Promise((resolve, reject) => {
    child.once("message", resolve);
    child.once("exit", (code) => reject(new Error(`the REST client exited with ${code}`)));
  });
  await next();
  return {
    async round() {
      const answer = next();
      child.send("go");
      return tasks / (await answer);
    },
    async close() {
      child.removeAllListeners("exit");
      child.kill();
      await server.close();
      await js.close();
    },
  };
}

async function main() {
  const dir = mkdtempSync(path.join(tmpdir(), "jobshell-doors-"));
  const open = { library: () => libraryDoor(), shell: () => shellDoor(dir), rest: () => restDoor() };
  const doors = {};
  const rates = { library: [], shell: [], rest: [] };
  for (const [name, make] of Object.entries(open)) if (only.has(name)) doors[name] = await make();
  for (let i = 0; i <= repeat; i++) {
    for (const [name, door] of Object.entries(doors)) {
      const rate = await door.round();
      if (i > 0) rates[name].push(rate); // the first round warms each door up
    }
  }
  for (const door of Object.values(doors)) await door.close();
  rmSync(dir, { recursive: true, force: true });
  const rows = [
    ["library", "library: task() for each, then waitfor() for each (tasks/s)", () => spread(rates.library)],
    ["shell", "shell: the same two statements piped into jobshell (tasks/s)", () => spread(rates.shell)],
    ["rest", `REST: POST /tasks for each, then GET /tasks/{id}/wait, ${connections} connections (tasks/s)`, () => spread(rates.rest)],
    ["shell", "shell / library, median of rounds", () => ratio(rates.shell, rates.library)],
    ["rest", "REST / library, median of rounds", () => ratio(rates.rest, rates.library)],
  ];
  const shown = rows.filter(([door, label]) => doors[door] && (!label.includes("/ library") || doors.library));
  printTable(
    `${tasks} no-op tasks all issued, then all awaited, memory mode, scripts isolated: ${repeat} rounds in turns, median (range)`,
    shown.map(([, label, value]) => [label, value()]),
  );
}
