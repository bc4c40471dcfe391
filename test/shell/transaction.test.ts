// transaction() in the shell, as an operator pastes it: the shell runs as a real process
// on piped input (dist/cli.js; `npm test` builds it).
import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

function shell(input: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.resolve("dist/cli.js"), ...args], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", JOBSHELL_HISTORY: "", NO_COLOR: "1" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

const input = `debug()
await upload(\`
- name: watch
  topics: [Transaction.Processing, Transaction.Complete, Transaction.Suspending]
  script: qprint("event", task.content.xname, task.content.previousStatus, "->", task.content.status, task.content.item)
\`)

tx = await transaction("order-42", {item: "gundam"})
await tx.to("Complete")
print(tx.status, tx.xname)

t2 = await transaction(name="order-43", data=dict(item="zaku"))
await t2.to("Suspending")
await t2.to("Complete")

`;

describe("transaction() in the shell", () => {
  it("begins, moves and announces transactions; an illegal move is reported with both statuses", async () => {
    const r = await shell(input, ["--job-transaction-event"]);
    const out = r.stdout + r.stderr;
    expect(out).toContain("event order-42 null -> Processing gundam");
    expect(out).toContain("event order-42 Processing -> Complete gundam");
    expect(out).toContain("Complete order-42");
    expect(out).toContain("event order-43 Processing -> Suspending zaku");
    expect(out).toMatch(/IllegalTransitionError: transaction order-43 cannot go from Suspending to Complete/);
    expect(r.code).toBe(1);
  });

  it("without job_transaction_event no event task is issued", async () => {
    const r = await shell(input.replace("print(tx.status, tx.xname)", "print(tx.status, tx.xname, (await stats()).issued)"), []);
    const out = r.stdout + r.stderr;
    expect(out).toContain("Complete order-42 0");
    expect(out).not.toContain("event order-42");
  });

  it("shows a transaction as its name, status and data", async () => {
    const r = await shell('tx = await transaction("order-44", dict(item="gouf"))\ntx\n\n', []);
    expect(r.stdout).toMatch(/^Transaction order-44 \{\n  status: 'Processing',\n  previousStatus: null,\n  data: \{ item: 'gouf' \},\n  xid: '[0-9a-f]{32}',\n  next: \[/);
    expect(r.stdout).not.toContain("owner");
  });
});
