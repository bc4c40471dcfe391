// The transaction lifecycle: statuses, legal moves, and the Transaction.<Status> events.
import { afterEach, describe, expect, it } from "vitest";
import { IllegalTransitionError } from "../src/errors.js";
import { internals } from "../src/internals.js";
import { open, type JobShell } from "../src/jobshell.js";
import { transactionStatuses, transitions, Transactions, type TransactionStatus } from "../src/transaction.js";

function recorder(events = true) {
  const issued: { topic: string; content: Record<string, unknown>; expire: number }[] = [];
  const txs = new Transactions({
    events,
    issue: async (topic, content, expire) => {
      issued.push({ topic, content, expire });
      return `t${issued.length}`;
    },
  });
  return { txs, issued };
}

describe("transaction lifecycle", () => {
  it("has the ten statuses of the source, each with its moves listed", () => {
    expect(transactionStatuses).toEqual([
      "Processing", "Complete", "Suspending", "RecoveryProcessing", "RecoveryComplete",
      "ForceRecoveryComplete", "Aborted", "Cancelling", "Cancelled", "ForceCancelled",
    ]);
    for (const status of transactionStatuses) {
      for (const next of transitions[status]) expect(transactionStatuses).toContain(next);
    }
    // every status can be reached from Processing
    const reached = new Set<TransactionStatus>(["Processing"]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const s of [...reached]) for (const n of transitions[s]) if (!reached.has(n)) reached.add(n), (grew = true);
    }
    expect([...reached].sort()).toEqual([...transactionStatuses].sort());
  });

  it("begins in Processing and moves along legal transitions", async () => {
    const { txs } = recorder(false);
    const tx = await txs.begin("order-1");
    expect(tx.status).toBe("Processing");
    expect(tx.xid).toMatch(/^[0-9a-f]{32}$/);
    expect(tx.xname).toBe("order-1");
    await tx.to("Suspending");
    await tx.to("Processing");
    await tx.to("Aborted");
    await tx.to("Cancelling");
    await tx.to("Cancelled");
    expect(tx.status).toBe("Cancelled");
    expect(tx.previousStatus).toBe("Cancelling");
    expect(tx.next).toEqual([]);
  });

  it("refuses an illegal move with an error that names both statuses, and changes nothing", async () => {
    const { txs, issued } = recorder();
    const tx = await txs.begin("order-2");
    await tx.to("Complete");
    const err = await tx.to("Processing").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IllegalTransitionError);
    expect((err as IllegalTransitionError).code).toBe("ILLEGAL_TRANSITION");
    expect((err as IllegalTransitionError).from).toBe("Complete");
    expect((err as IllegalTransitionError).to).toBe("Processing");
    expect((err as Error).message).toContain("Complete");
    expect((err as Error).message).toContain("Processing");
    expect(tx.status).toBe("Complete");
    expect(issued.map((e) => e.topic)).toEqual(["Transaction.Processing", "Transaction.Complete"]);
  });

  it("a final status says it is final", async () => {
    const { txs } = recorder(false);
    const tx = await txs.begin();
    await tx.to("Cancelling");
    await tx.to("ForceCancelled");
    await expect(tx.to("Processing")).rejects.toThrow(/ForceCancelled is final/);
  });

  it("an unknown status is a TypeError listing the statuses", async () => {
    const { txs } = recorder(false);
    const tx = await txs.begin();
    await expect(tx.to("Done" as TransactionStatus)).rejects.toThrow(TypeError);
    await expect(tx.to("Done" as TransactionStatus)).rejects.toThrow(/Processing, Complete/);
  });

  it("of two concurrent moves from one status only one passes", async () => {
    const { txs } = recorder();
    const tx = await txs.begin();
    const results = await Promise.allSettled([tx.to("Complete"), tx.to("Aborted")]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
  });

  it("with events on, every change issues Transaction.<Status> with xid, xname, status, previousStatus, at and the data", async () => {
    const { txs, issued } = recorder();
    const tx = await txs.begin("order-3", { item: "gundam" });
    const taskid = await tx.to("Aborted", { reason: "declined" });
    expect(taskid).toBe("t2");
    expect(issued.map((e) => e.topic)).toEqual(["Transaction.Processing", "Transaction.Aborted"]);
    expect(issued[0].content).toMatchObject({ xid: tx.xid, xname: "order-3", status: "Processing", previousStatus: null, item: "gundam" });
    expect(issued[1].content).toMatchObject({ xid: tx.xid, xname: "order-3", status: "Aborted", previousStatus: "Processing", reason: "declined" });
    expect(issued[1].content.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$/);
  });

  it("with events off, no task is issued", async () => {
    const { txs, issued } = recorder(false);
    const tx = await txs.begin("order-4");
    expect(await tx.to("Complete")).toBeUndefined();
    expect(issued).toEqual([]);
  });

  it("a change whose event cannot be issued is undone", async () => {
    let fail = false;
    const txs = new Transactions({
      events: true,
      issue: async () => {
        if (fail) throw new Error("queue full");
        return "ok";
      },
    });
    const tx = await txs.begin("order-5", { n: 1 });
    fail = true;
    await expect(tx.to("Complete", { n: 2 })).rejects.toThrow("queue full");
    expect(tx.status).toBe("Processing");
    expect(tx.data).toEqual({ n: 1 });
  });

  it("an event's content takes up the transaction it describes, in any process", async () => {
    const { txs: here, issued } = recorder();
    const tx = await here.begin("order-6", { item: "zaku" });
    await tx.to("Aborted");
    const { txs: elsewhere } = recorder();
    const taken = await elsewhere.open(issued[1].content);
    expect(taken.xid).toBe(tx.xid);
    expect(taken.status).toBe("Aborted");
    expect(taken.data).toEqual({ item: "zaku" });
    await taken.to("Cancelling");
    // the same process knows it by name and by xid
    expect(await elsewhere.open("order-6")).toBe(taken);
    expect(elsewhere.get(tx.xid)).toBe(taken);
    // the process that began it hands back its own object for the event
    expect(await here.open(issued[1].content)).toBe(tx);
  });

  it("an event from another process moves the transaction this process knows on; an older event does not", async () => {
    const { txs: a, issued: fromA } = recorder();
    const tx = await a.begin("order-8");
    await tx.to("Suspending");
    const { txs: b, issued: fromB } = recorder();
    await new Promise((r) => setTimeout(r, 5)); // the event's time is to the microsecond; moves here are ms apart
    await (await b.open(fromA[1].content)).to("Aborted");
    // a takes up b's Aborted event: its own object, now at the status the event tells
    const taken = await a.open(fromB[0].content);
    expect(taken).toBe(tx);
    expect([taken.status, taken.previousStatus]).toEqual(["Aborted", "Suspending"]);
    await taken.to("ForceCancelled");
    expect(fromA.at(-1)!.content).toMatchObject({ status: "ForceCancelled", previousStatus: "Aborted" });
    // the Suspending event, arriving late, is history: the status stands
    expect((await a.open(fromA[1].content)).status).toBe("ForceCancelled");
  });

  it("a name this process knows is the same transaction; an unknown one begins", async () => {
    const { txs, issued } = recorder();
    const a = await txs.open("order-7");
    const b = await txs.open("order-7");
    expect(b).toBe(a);
    expect(issued).toHaveLength(1);
  });

  it("data may not overwrite the transaction's own fields", async () => {
    const { txs } = recorder();
    await expect(txs.begin("x", { status: "Complete" })).rejects.toThrow(TypeError);
  });

  it("forgets the oldest transactions past its limit", async () => {
    const txs = new Transactions({ events: false, issue: async () => "", limit: 2 });
    await txs.begin("a");
    await txs.begin("b");
    await txs.begin("c");
    expect(txs.get("a")).toBeUndefined();
    expect(txs.get("c")?.xname).toBe("c");
  });
});

describe("transactions through the library", () => {
  let js: JobShell | undefined;
  afterEach(async () => {
    await js?.close();
    js = undefined;
  });

  const watcher = `
- name: watcher
  topics: [${transactionStatuses.map((s) => `Transaction.${s}`).join(", ")}]
  script: return task.content
`;

  it("with job_transaction_event on, jobs on Transaction.<Status> receive every change", async () => {
    js = await open({ jobTransactionEvent: true, log: () => {} });
    await js.upload(watcher);
    const tx = await js.transaction("order-42", { item: "gundam" });
    const completed = await tx.to("Complete");
    const record = await js.waitfor(completed!, 10);
    expect(record.topic).toBe("Transaction.Complete");
    expect(record.results[0].value).toMatchObject({
      xid: tx.xid, xname: "order-42", status: "Complete", previousStatus: "Processing", item: "gundam",
    });
    expect((await js.stats()).issued).toBe(2);
  });

  it("with job_transaction_event off (the default), no task is issued", async () => {
    js = await open({ log: () => {} });
    await js.upload(watcher);
    const tx = await js.transaction("order-43");
    expect(await tx.to("Complete")).toBeUndefined();
    expect((await js.stats()).issued).toBe(0);
  });

  it("job scripts have transaction() and an illegal move fails the job with the error's message", async () => {
    js = await open({ log: () => {} });
    await js.upload(`
- name: tx-script
  topics: [tx]
  script: |-
    const tx = await transaction(task.content.name)
    await tx.to("Complete")
    await tx.to("Suspending")
`);
    const record = await js.waitfor(await js.task("tx", { name: "order-44" }), 10);
    expect(record.status).toBe("failed");
    expect(record.results[0].error).toMatch(/cannot go from Complete to Suspending/);
    expect(internals(js).transactions.get("order-44")?.status).toBe("Complete");
  });
});
