// The record index (js.tasks(), behind GET /tasks and the console) in each mode: with RECORDS records
// seeded, the time of the first page, of the last page and of one text search (bounded: it scans
// 10,000 records); then what the index costs the queue: issued and awaited with this build against
// the build before the index (BASELINE, a commit: by default the parent of the first "Index:" commit),
// built from `git archive` into a temporary folder, in turns, in the same run.
// Run: npm run bench:records   (REDIS_URL, AMQP_URL, MODES=memory,redis,amqp, RECORDS=100000,
//      PAGES=20 (timed pages of each kind), REPEAT=5, TASKS_MEMORY=50000, TASKS_REDIS=20000,
//      TASKS_AMQP=5000, BASELINE=<commit>)
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deleteAmqpNamespace } from "../dist/backends/amqp/index.js";
import { deleteRedisNamespace } from "../dist/backends/redis/index.js";
import { Redis } from "ioredis";
import { open } from "../dist/index.js";
import { encodeCursor } from "../dist/record-query.js";
import { issueAndWait, median, printTable, ratio, spread } from "./stats.js";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const amqpUrl = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const modes = (process.env.MODES ?? "memory,redis,amqp").split(",");
const records = Number(process.env.RECORDS ?? 100_000);
const pages = Number(process.env.PAGES ?? 20);
const repeat = Number(process.env.REPEAT ?? 5);
const tasksOf = {
  memory: Number(process.env.TASKS_MEMORY ?? 50_000),
  redis: Number(process.env.TASKS_REDIS ?? 20_000),
  amqp: Number(process.env.TASKS_AMQP ?? 5_000),
};
const root = new URL("..", import.meta.url).pathname;
const noop = `- {name: noop, topics: [noop], script: "return"}`;
const unique = (label) => `bench-${label}-${randomBytes(3).toString("hex")}`;

function where(mode, namespace) {
  const debugChannel = `${namespace}.debug`;
  if (mode === "redis") return { redisUrl, namespace, debugChannel };
  if (mode === "amqp") return { amqpUrl, namespace, debugChannel };
  return {};
}

async function cleanup(mode, namespace) {
  if (mode === "redis") await deleteRedisNamespace(redisUrl, namespace);
  if (mode === "amqp") await deleteAmqpNamespace(amqpUrl, namespace, `${namespace}.debug`);
}

const ms = (values) => `${median(values).toFixed(2)} ms (${Math.min(...values).toFixed(2)} to ${Math.max(...values).toFixed(2)})`;

async function timed(runs, fn) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const began = performance.now();
    await fn();
    times.push(performance.now() - began);
  }
  return times;
}

/** RECORDS tasks seeded (no worker: they stay queued), then the pages timed. */
async function listing(mode) {
  const namespace = unique("records");
  const js = await open({ ...where(mode, namespace), worker: false, jobQueueSize: records * 2, taskRecordTtl: 3600, log: () => {} });
  try {
    const seedBegan = performance.now();
    for (let done = 0; done < records; done += 1000) {
      await Promise.all(Array.from({ length: Math.min(1000, records - done) }, (_, i) => js.task("seed", { n: done + i, text: `record number ${done + i}` }, 3600)));
    }
    const seedMs = performance.now() - seedBegan;
    // The last page's cursor: walk to the end 500 at a time, then start 50 records before the oldest.
    let page = await js.tasks({ limit: 500 });
    let walked = page.records.length;
    const walkBegan = performance.now();
    let last = page;
    while (page.next) {
      last = page;
      page = await js.tasks({ limit: 500, cursor: page.next });
      walked += page.records.length;
    }
    const walkMs = performance.now() - walkBegan;
    if (walked !== records) throw new Error(`${mode}: walked ${walked} records of ${records}`);
    const tail = [...last.records, ...page.records];
    const lastCursor = encodeCursor(tail[tail.length - 51]);
    const first = await timed(pages, async () => {
      const p = await js.tasks({ limit: 50 });
      if (p.records.length !== 50 || !p.next) throw new Error(`${mode}: the first page is not full`);
    });
    const lastPage = await timed(pages, async () => {
      const p = await js.tasks({ limit: 50, cursor: lastCursor });
      if (p.records.length !== 50 || p.next) throw new Error(`${mode}: the last page is not the last 50`);
    });
    let scanned = 0;
    const search = await timed(Math.max(3, Math.round(pages / 4)), async () => {
      const p = await js.tasks({ text: "no such words" });
      scanned = p.scanned;
    });
    return { seedMs, walkMs, first, lastPage, search, scanned };
  } finally {
    await js.close();
    await cleanup(mode, namespace);
  }
}

/** The build before the index, compiled into a temporary folder. */
function buildBaseline() {
  const git = (...args) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
  const firstIndex = git("log", "--format=%H", "--grep=^Index:").split("\n").filter(Boolean).pop();
  const commit = process.env.BASELINE ?? (firstIndex ? `${firstIndex}^` : undefined);
  if (!commit) throw new Error("no BASELINE given and no commit whose subject starts with Index:");
  const dir = mkdtempSync(join(tmpdir(), "jobshell-baseline-"));
  execFileSync("sh", ["-c", `git archive ${git("rev-parse", commit)} | tar -x -C "${dir}"`], { cwd: root });
  symlinkSync(realpathSync(join(root, "node_modules")), join(dir, "node_modules"));
  execFileSync(process.execPath, [join(dir, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: dir });
  execFileSync(process.execPath, ["scripts/copy-lua.js"], { cwd: dir });
  return { dir, commit: git("rev-parse", "--short", commit) };
}

/** Redis's own CPU time so far (s): what the scripts cost the server. */
let monitor;
async function redisCpu() {
  monitor ??= new Redis(redisUrl);
  const info = await monitor.info("cpu");
  return Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)[1]);
}

/** Issued 1,000 at a time and awaited, worker in this process, with `openFn`'s build: tasks/s, and CPU
 *  µs a task of this process (every thread) and, in Redis mode, of the server. */
async function throughput(openFn, mode, tasks) {
  const namespace = unique("cost");
  const js = await openFn({ ...where(mode, namespace), jobQueueBulkReadSize: 32, taskRecordTtl: 600, log: () => {} });
  try {
    await js.upload(noop);
    await issueAndWait(Math.min(2000, tasks), 1000, () => js.task("noop", {}, 60), (id) => js.waitfor(id, 60));
    const cpu = process.cpuUsage();
    const server = mode === "redis" ? await redisCpu() : 0;
    const rate = await issueAndWait(tasks, 1000, () => js.task("noop", {}, 60), (id) => js.waitfor(id, 60).then(completed));
    const used = process.cpuUsage(cpu);
    const serverUs = mode === "redis" ? ((await redisCpu()) - server) * 1e6 / tasks : 0;
    return { rate, cpuUs: (used.user + used.system) / tasks, serverUs };
  } finally {
    await js.close();
    await cleanup(mode, namespace);
  }
}

function completed(record) {
  if (record.status !== "completed") throw new Error(`task ${record.taskid} ended ${record.status}`);
}

const baseline = buildBaseline();
const before = await import(join(baseline.dir, "dist/index.js"));
try {
  for (const mode of modes) {
    const l = await listing(mode);
    printTable(`${mode}: ${records.toLocaleString("en-US")} records (seeded in ${(l.seedMs / 1000).toFixed(1)} s, walked 500 a page in ${(l.walkMs / 1000).toFixed(1)} s)`, [
      ["first page of 50, median of " + pages, ms(l.first)],
      ["last page of 50, median of " + pages, ms(l.lastPage)],
      ["last / first", (median(l.lastPage) / median(l.first)).toFixed(2)],
      [`text search (no match: scans ${l.scanned.toLocaleString("en-US")})`, ms(l.search)],
    ]);
    const withIndex = [];
    const without = [];
    for (let round = 0; round < repeat; round++) {
      without.push(await throughput(before.open, mode, tasksOf[mode]));
      withIndex.push(await throughput(open, mode, tasksOf[mode]));
    }
    const of = (runs, key) => runs.map((run) => run[key]);
    const us = (values) => `${median(values).toFixed(1)} µs (${Math.min(...values).toFixed(1)} to ${Math.max(...values).toFixed(1)})`;
    const rows = [
      ["with the index, tasks/s", spread(of(withIndex, "rate"))],
      ["without, tasks/s", spread(of(without, "rate"))],
      ["with / without, median of rounds", ratio(of(withIndex, "rate"), of(without, "rate"))],
      ["CPU a task (this process), with", us(of(withIndex, "cpuUs"))],
      ["CPU a task (this process), without", us(of(without, "cpuUs"))],
      ["CPU with / without, median of rounds", ratio(of(withIndex, "cpuUs"), of(without, "cpuUs"))],
    ];
    if (mode === "redis") {
      rows.push(
        ["Redis CPU a task, with", us(of(withIndex, "serverUs"))],
        ["Redis CPU a task, without", us(of(without, "serverUs"))],
        ["Redis CPU with / without, median of rounds", ratio(of(withIndex, "serverUs"), of(without, "serverUs"))],
      );
    }
    printTable(`${mode}: the index's cost, ${tasksOf[mode].toLocaleString("en-US")} tasks issued and awaited, ${repeat} rounds in turns (without: ${baseline.commit})`, rows);
  }
} finally {
  monitor?.disconnect();
  rmSync(baseline.dir, { recursive: true, force: true });
}
