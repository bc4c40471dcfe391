// What Redis mode's scripts cost Redis, per task: the push, take and finish scripts called directly on
// a namespace of their own, in batches of 32 as a busy worker calls them, and one task a call as a round
// trip within one process does (a push claimed by its idle worker, then its finish). Redis's own count of
// the time spent in EVALSHA (INFO commandstats), medians of ROUNDS rounds of TASKS tasks.
// Run: npm run build && node bench/redis-scripts.js   (REDIS_URL, ROUNDS=5, TASKS=4800)
import { Redis } from "ioredis";
import { deleteRedisNamespace, scriptText } from "../dist/backends/redis/index.js";
import { median, printTable } from "./stats.js";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const rounds = Number(process.env.ROUNDS ?? 5);
const tasks = Number(process.env.TASKS ?? 4800);
const redis = new Redis(url);
const sha = {};
for (const [name, file] of [["push", "push-tasks"], ["take", "take-tasks"], ["finish", "finish-tasks"]]) sha[name] = await redis.script("LOAD", scriptText(file));

/** Microseconds Redis has spent in EVALSHA so far. */
async function scriptTime() {
  const stats = await redis.info("commandstats");
  return Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(stats)?.[1] ?? 0);
}

/** Runs `calls` and returns Redis's script time for them, per task. */
async function timed(calls) {
  const before = await scriptTime();
  for (const call of calls) await call();
  return ((await scriptTime()) - before) / tasks;
}

const results = '[{"job":"noop","status":"completed"}]';
const finishArgs = (rows) => rows.flatMap(([id, attempt, , , , startedAt]) => [id, "completed", Date.now(), results, "", startedAt, attempt]);

async function round(batch) {
  const namespace = `bench-scripts-${Math.random().toString(36).slice(2, 8)}`;
  const p = `{${namespace}}:`;
  const keys = { normal: `${p}normal`, idle: `${p}idle`, recovery: `${p}recovery`, backup: `${p}backup:w1`, alive: `${p}alive:w1`, workers: `${p}workers`, deletions: `${p}deletions` };
  // When records ending now are due for deletion (a minute's bucket, an hour's ttl).
  const due = () => (Math.floor(Date.now() / 60_000) + 1) * 60_000 + 3_600_000;
  const ids = Array.from({ length: tasks }, (_, i) => i.toString(16).padStart(32, "0"));
  const groups = [];
  for (let i = 0; i < tasks; i += batch) groups.push(ids.slice(i, i + batch));
  const task = (id) => [id, '{"topic":"noop","content":{}}', 60, Date.now()];
  let rows = [];
  let push;
  let take = 0;
  if (batch > 1) {
    // Queued by producers, taken by a busy worker: no idle listing, no claims.
    push = await timed(groups.map((group) => () => redis.evalsha(sha.push, 3, keys.normal, keys.idle, keys.deletions, p, 1e6, Date.now(), "", 0, 0, `${p}ended`, due(), ...group.flatMap(task))));
    take = await timed(
      groups.map((_, n) => async () => {
        const reply = await redis.evalsha(sha.take, 7, keys.normal, keys.recovery, keys.backup, keys.alive, keys.workers, keys.idle, keys.deletions, p, `${p}ended`, Date.now(), "w1", batch, 10000, n + 1, due(), rows.length);
        // Every task taken so far is in Backup, known to the worker. The reply: [listed, startedAt, then
        // taskid, attempt, task, expire, createdAt per task]
        const flat = JSON.parse(reply);
        for (let i = 2; i < flat.length; i += 5) rows.push([...flat.slice(i, i + 5), flat[1]]);
      }),
    );
  } else {
    // Claimed one by one by the idle worker of the process that pushes them, listed anew each time.
    push = await timed(
      groups.map((group, n) => async () => {
        await redis.hset(keys.idle, "w1", `32:${n}`);
        const now = Date.now();
        await redis.evalsha(sha.push, 3, keys.normal, keys.idle, keys.deletions, p, 1e6, now, "w1", 1, n, `${p}ended`, due(), ...group.flatMap(task));
        rows.push([group[0], 1, null, 60, now, now]);
      }),
    );
  }
  const byGroup = [];
  for (let i = 0; i < rows.length; i += batch) byGroup.push(rows.slice(i, i + batch));
  const finish = await timed(byGroup.map((group) => () => redis.evalsha(sha.finish, 2, keys.backup, keys.deletions, p, `${p}ended`, due(), "bench-worker", 0, ...finishArgs(group))));
  if ((await redis.llen(keys.backup)) !== 0 || rows.length !== tasks) throw new Error("the scripts did not take and finish every task");
  await deleteRedisNamespace(url, namespace);
  return { push, take, finish };
}

const rows = [];
for (const batch of [32, 1]) {
  const runs = [];
  for (let i = 0; i < rounds; i++) runs.push(await round(batch));
  const m = (phase) => median(runs.map((r) => r[phase]));
  const total = m("push") + m("take") + m("finish");
  rows.push([
    batch > 1 ? `batches of ${batch}` : "one task a call, claimed",
    `push ${m("push").toFixed(1)}, take ${m("take").toFixed(1)}, finish ${m("finish").toFixed(1)}: ${total.toFixed(1)} µs of Redis time a task`,
  ]);
}
printTable(`Redis at ${url}: script time per task (INFO commandstats), medians of ${rounds} rounds of ${tasks} tasks`, rows);
redis.disconnect();
