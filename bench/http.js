// REST API load test: POST /tasks at full rate from a second process for SECONDS, with the worker
// running in the server's process; then the same client against a bare http server that answers
// 201 at once, as the ceiling. Checks that no answer was a 5xx and that every issued task ended.
// With --wait, each connection follows each POST with GET /tasks/{id}/wait, the path users take (the
// bare server answers that GET at once too), and a request is the pair. jobshell runs its job scripts
// isolated in its script pool's threads (the default), and again with job_in_process in the same turns,
// so that what the isolation costs prints as a ratio.
//
// Run: npm run build && node bench/http.js [--seconds 10] [--connections 32] [--repeat 3] [--wait] [--redis URL | --amqp URL]
import { fork } from "node:child_process";
import { createServer, request, Agent } from "node:http";
import { open } from "../dist/index.js";
import { serve } from "../dist/server/index.js";
import { percentile, printTable } from "./stats.js";

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};

if (args[0] === "client") await client(args[1], Number(args[2]), Number(args[3]), args[4] === "wait");
else await main();

/** The load: CONNECTIONS loops on keep-alive sockets, each POSTing as soon as its last answer came. */
async function client(url, seconds, connections, wait) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const target = new URL("/tasks", url);
  const body = JSON.stringify({ topic: "bench.http", content: { n: 1 }, expire: 120 });
  const latencies = [];
  const statuses = {};
  let errors = 0;
  /** One request; resolves with its answer's body, or undefined when it failed. */
  const send = (method, path, payload) =>
    new Promise((resolve) => {
      const headers = payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {};
      const req = request(new URL(path, url), { method, agent, headers }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => {
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          resolve(text);
        });
      });
      req.setTimeout(30_000, () => req.destroy(new Error("no answer in 30 s")));
      req.on("error", () => {
        errors += 1;
        resolve(undefined);
      });
      req.end(payload);
    });
  const post = async () => {
    const began = process.hrtime.bigint();
    const created = await send("POST", target.pathname, body);
    if (wait && created !== undefined) await send("GET", `/tasks/${JSON.parse(created).taskid}/wait?timeout=60`);
    latencies.push(Number(process.hrtime.bigint() - began) / 1e6);
  };
  const began = performance.now();
  const deadline = began + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) await post();
    }),
  );
  const elapsed = (performance.now() - began) / 1000;
  agent.destroy();
  process.send({ requests: latencies.length, elapsed, statuses, errors, p50: percentile(latencies, 50), p99: percentile(latencies, 99) });
}

function runClient(url, seconds, connections) {
  return new Promise((resolve, reject) => {
    const child = fork(new URL(import.meta.url).pathname, ["client", url, String(seconds), String(connections), args.includes("--wait") ? "wait" : "post"]);
    child.once("message", resolve);
    child.once("error", reject);
    child.once("exit", (code) => code !== 0 && reject(new Error(`client exited ${code}`)));
  });
}

async function main() {
  const seconds = Number(flag("seconds", 10));
  const connections = Number(flag("connections", 32));
  const repeat = Number(flag("repeat", 3));
  const redisUrl = flag("redis");
  const amqpUrl = flag("amqp");

  // Alternate the two so that a noisy neighbour on the machine weighs on both alike.
  const ceilings = [];
  const loads = [];
  const loadsInProcess = [];
  let mode = "";
  let ok = true;
  for (let i = 0; i < repeat; i++) {
    ceilings.push(await bareRun(seconds, connections));
    const run = await jobshellRun(seconds, connections, { redisUrl, amqpUrl });
    mode = run.mode;
    loads.push(run);
    const inProcess = await jobshellRun(seconds, connections, { redisUrl, amqpUrl, jobInProcess: true });
    loadsInProcess.push(inProcess);
    ok &&= run.ok && inProcess.ok;
    console.log(
      `run ${i + 1}: jobshell ${Math.round(rate(run))} req/s p99 ${run.p99.toFixed(1)} ms; job_in_process ${Math.round(rate(inProcess))} req/s; bare ${Math.round(rate(ceilings[i]))} req/s p99 ${ceilings[i].p99.toFixed(1)} ms; ` +
        `answers ${JSON.stringify(run.statuses)}, client errors ${run.errors}, issued ${run.created}/${run.issued} ended ${run.ended}, ` +
        `backlog drained in ${run.drainSeconds.toFixed(1)} s`,
    );
  }
  const med = (runs, pick) => percentile(runs.map(pick), 50);
  const what = args.includes("--wait") ? "POST /tasks then GET /tasks/{id}/wait" : "POST /tasks";
  printTable(`${what} for ${seconds} s, ${connections} keep-alive connections, ${mode} mode: medians of ${repeat} runs`, [
    ["jobshell serve (worker running)", `${Math.round(med(loads, rate))} req/s, p50 ${med(loads, (r) => r.p50).toFixed(2)} ms, p99 ${med(loads, (r) => r.p99).toFixed(2)} ms`],
    ["jobshell serve, job_in_process", `${Math.round(med(loadsInProcess, rate))} req/s, p50 ${med(loadsInProcess, (r) => r.p50).toFixed(2)} ms, p99 ${med(loadsInProcess, (r) => r.p99).toFixed(2)} ms`],
    ["isolated / job_in_process, median of runs", `${med(loads.map((r, i) => rate(r) / rate(loadsInProcess[i])), (x) => x).toFixed(2)}`],
    ["bare http server answering at once", `${Math.round(med(ceilings, rate))} req/s, p50 ${med(ceilings, (r) => r.p50).toFixed(2)} ms, p99 ${med(ceilings, (r) => r.p99).toFixed(2)} ms`],
  ]);
  console.log(ok ? "\nOK: no 5xx, no client errors, issued = ended in every run" : "\nFAILED: see the runs above");
  process.exitCode = ok ? 0 : 1;
}

function rate(r) {
  return r.requests / r.elapsed;
}

/** The ceiling: the same client against a server that does nothing but answer 201. */
async function bareRun(seconds, connections) {
  const bare = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const text = '{"taskid":"00000000000000000000000000000000"}';
      res.writeHead(req.method === "POST" ? 201 : 200, { "content-type": "application/json", "content-length": text.length });
      res.end(text);
    });
  });
  bare.keepAliveTimeout = 65_000;
  await new Promise((r) => bare.listen(0, "127.0.0.1", r));
  const result = await runClient(`http://127.0.0.1:${bare.address().port}`, seconds, connections);
  bare.closeAllConnections();
  await new Promise((r) => bare.close(r));
  return result;
}

/** `options`: the queue's URLs, and job_in_process. */
async function jobshellRun(seconds, connections, options) {
  const { jobInProcess, ...urls } = options;
  const namespace = `bench-http-${process.pid}-${Date.now()}`;
  const js = await open({ ...urls, namespace, debugChannel: `${namespace}.debug`, jobQueueSize: 1_000_000, taskRecordTtl: 600, jobInProcess, log: () => {} });
  await js.upload(`- {name: bench-http, topics: [bench.http], script: "return task.content.n"}`, { replace: true });
  const server = await serve(js, { port: 0, host: "127.0.0.1" });
  const load = await runClient(server.url, seconds, connections);
  // Every task issued must end: wait for the worker to finish the backlog.
  const drainBegan = performance.now();
  let totals = js.metrics.totals();
  const ended = () => totals.completed + totals.failed + totals.expired;
  while (ended() < totals.issued && performance.now() - drainBegan < 120_000) {
    await new Promise((r) => setTimeout(r, 100));
    totals = js.metrics.totals();
  }
  const drainSeconds = (performance.now() - drainBegan) / 1000;
  await server.close();
  await js.close();
  await cleanup(namespace, urls);
  const fivexx = Object.entries(load.statuses).filter(([s]) => Number(s) >= 500).reduce((n, [, c]) => n + c, 0);
  const created = load.statuses[201] ?? 0;
  return {
    ...load,
    mode: js.mode,
    created,
    issued: totals.issued,
    ended: ended(),
    drainSeconds,
    ok: fivexx === 0 && load.errors === 0 && created === totals.issued && ended() === totals.issued,
  };
}

/** Leave nothing on a shared server: the run's keys, queues and exchanges go. */
async function cleanup(namespace, { redisUrl, amqpUrl }) {
  if (amqpUrl) {
    const { deleteAmqpNamespace } = await import("../dist/backends/amqp/index.js");
    await deleteAmqpNamespace(amqpUrl, namespace, `${namespace}.debug`);
  }
  if (redisUrl) {
    const { deleteRedisNamespace } = await import("../dist/backends/redis/index.js");
    await deleteRedisNamespace(redisUrl, namespace);
  }
}
