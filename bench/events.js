// What the REST server's event hub (GET /events, the /stats history) costs the queue it watches:
// memory mode, tasks issued and awaited through the library, with no server, with a server nobody
// watches, and with a server streaming every event to CLIENTS browsers' worth of SSE clients. Rounds
// alternate the three, and the ratios are per round.
//
// Run: npm run build && node bench/events.js [--tasks 20000] [--rounds 5] [--clients 4]
import { fork } from "node:child_process";
import { request } from "node:http";
import { open } from "../dist/index.js";
import { serve } from "../dist/server/index.js";
import { issueAndWait, printTable, ratio, spread } from "./stats.js";

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const tasks = flag("tasks", 20000);
const rounds = flag("rounds", 5);
const clients = flag("clients", 4);

const job = "- name: noop\n  topics: [noop]\n  script: return 1";

/** A process reading the whole stream at `url` (as a browser would, elsewhere); resolves once it
 *  is connected, with a function that ends it and resolves with the bytes it read. */
function reader(url) {
  const child = fork(new URL(import.meta.url).pathname, ["reader", url]);
  return new Promise((resolve, reject) => {
    child.once("message", () =>
      resolve(
        () =>
          new Promise((done) => {
            child.once("message", done);
            child.send("stop");
          }),
      ),
    );
    child.once("error", reject);
  });
}

if (args[0] === "reader") {
  let bytes = 0;
  const req = request(`${args[1]}/events`, (res) => {
    res.on("data", (chunk) => (bytes += chunk.length));
    process.send("connected");
  });
  req.on("error", () => {});
  req.end();
  process.on("message", () => {
    req.destroy();
    process.send(bytes);
    process.disconnect();
  });
} else await main();

/** tasks/s of one round: `server` none, "idle" or "watched". */
async function round(server) {
  const js = await open({ log: () => {}, jobInProcess: true });
  await js.upload(job);
  const running = server ? await serve(js, { port: 0, host: "127.0.0.1" }) : undefined;
  const readers = server === "watched" ? await Promise.all(Array.from({ length: clients }, () => reader(running.url))) : [];
  const rate = await issueAndWait(tasks, 500, () => js.task("noop", {}), (id) => js.waitfor(id, 60));
  const read = await Promise.all(readers.map((stop) => stop()));
  if (server === "watched" && read.some((b) => b === 0)) throw new Error("a client read nothing");
  await running?.close();
  await js.close();
  return rate;
}

async function main() {
  const rates = { none: [], idle: [], watched: [] };
  await round(undefined); // warm-up
  for (let i = 0; i < rounds; i++) {
    for (const kind of ["none", "idle", "watched"]) rates[kind].push(await round(kind === "none" ? undefined : kind));
  }
  printTable(`memory mode, ${tasks.toLocaleString("en-US")} tasks issued and awaited 500 at a time, ${rounds} rounds (tasks/s, median (min to max))`, [
    ["no server", spread(rates.none)],
    ["server, nobody watching", spread(rates.idle)],
    [`server, ${clients} SSE clients (other processes) reading every event`, spread(rates.watched)],
    ["idle server / no server", ratio(rates.idle, rates.none)],
    ["watched server / no server", ratio(rates.watched, rates.none)],
  ]);
}
