// The Lua scripts of Redis mode, one file per command in ./lua/, each opening with a header that gives
// its KEYS, its ARGV, its reply and what it does atomically. Shared functions live in ./lua/include/ and
// are pulled in by a line `--@include <name>` (once per script, where the line stands: after the locals
// they use). The build copies the folder next to the compiled module.
//
// Every key shares the hash tag of the namespace (`{jobshell}:...`), so a script may build any key from
// the prefix it is given (a record's, another worker's Backup) and still touch one cluster slot only.
// Record hash fields: task expire createdAt status attempt startedAt completedAt results warning owner tries
// (the taskid is the key's last part). `task` is what a worker needs of the task besides its times, as
// JSON: {topic, content, job?}. `owner` is the id of the worker that started it, for operators (the
// lease that fences finishing is the taskid's place in that worker's Backup list, see
// finish-tasks.lua). `warning` is there only if the outcome has one. Every field a script touches per
// task costs Redis time, the bottleneck of a busy queue: hence no taskid field, no empty warning, and no
// attempt until the task is first started (absent means 0). `tries` is there only for a task tried again:
// how each try that ended before its scripts did ended (include/end-try.lua).
//
// A script's whole text, for reading or for redis-cli (after `npm run build`):
//   node -e 'import("./dist/backends/redis/lua.js").then((m) => process.stdout.write(m.scriptText("take-tasks")))' > take.lua
//   redis-cli --eval take.lua <KEYS...> , <ARGV...>
import { readFileSync } from "node:fs";

/** The commands, by file name in ./lua/. */
export const scriptNames = [
  "push-tasks",
  "take-tasks",
  "finish-tasks",
  "give-back-tasks",
  "read-records",
  "sweep-ended-records",
  "rescue-dead-worker",
  "release-orphans",
  "retry-tasks",
  "put-jobs",
  "claim-lease",
  "release-lease",
] as const;

export type ScriptName = (typeof scriptNames)[number];

const folder = new URL("./lua/", import.meta.url);

/** The text of a command with its includes expanded: what Redis runs. */
export function scriptText(name: ScriptName): string {
  return expand(`${name}.lua`, new Set());
}

function expand(file: string, included: Set<string>): string {
  const text = readFileSync(new URL(file, folder), "utf8");
  return text.replace(/^--@include ([\w-]+)\n/gm, (_line, name: string) => {
    if (included.has(name)) return "";
    included.add(name);
    return expand(`include/${name}.lua`, included);
  });
}
