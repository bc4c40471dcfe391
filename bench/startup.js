// Start-up of the interactive shell: from spawning `jobshell` (memory mode, the sample jobs) on a
// pseudo-terminal until its first `>>> ` prompt is on screen, against spawning `node -e 0` until it
// exits. Medians of RUNS runs each (11 by default), alternating, and their ratio (target: at most 4).
// Run: npm run build && node bench/startup.js      (needs `script` from util-linux for the terminal)
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { median, printTable } from "./stats.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const runs = Number(process.env.RUNS ?? 11);

function nodeBaseline() {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const child = spawn(process.execPath, ["-e", "0"], { stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", () => resolve(performance.now() - began));
  });
}

function shellToPrompt() {
  return new Promise((resolve, reject) => {
    const command = `${JSON.stringify(process.execPath)} dist/cli.js --jobs samples/jobs`;
    const began = performance.now();
    // `script` gives the shell a terminal, so that it shows its banner and prompt.
    const child = spawn("script", ["-qfec", command, "/dev/null"], {
      cwd: root,
      env: { ...process.env, JOBSHELL_HISTORY: "", REDIS_URL: "", AMQP_URL: "", TERM: "xterm" },
      stdio: ["pipe", "pipe", "inherit"],
    });
    let seen = "";
    let elapsed;
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      if (elapsed === undefined && seen.includes(">>> ")) {
        elapsed = performance.now() - began;
        child.stdin.write("\x04"); // Ctrl-D: leave the shell
      }
    });
    child.on("error", reject);
    child.on("exit", () => (elapsed === undefined ? reject(new Error(`no prompt; output:\n${seen}`)) : resolve(elapsed)));
  });
}

const baseline = [];
const shell = [];
await nodeBaseline(); // warm the file cache
await shellToPrompt();
for (let i = 0; i < runs; i++) {
  baseline.push(await nodeBaseline());
  shell.push(await shellToPrompt());
}
const b = median(baseline);
const s = median(shell);
printTable(`Shell start-up, median of ${runs} runs`, [
  ["node -e 0 (spawn to exit)", `${b.toFixed(1)} ms`],
  ["jobshell to first >>> prompt", `${s.toFixed(1)} ms`],
  ["ratio", `${(s / b).toFixed(2)}x (target <= 4x)`],
]);
