// The Slack option end to end: a jobshell with a worker, its bots connected to a local fake Slack.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LogSink } from "../../src/builtins.js";
import { internals } from "../../src/internals.js";
import { open, type JobShell } from "../../src/jobshell.js";
import { FakeSlack } from "./fake-slack.js";

const listed = { id: "U111", name: "amuro" };
const alsoListed = { id: "U333", name: "sayla" };
const listedById = { id: "U444", name: "kai" };
const unlisted = { id: "U222", name: "char" };
const dm = (user: { id: string }) => `D${user.id}`;

function jobsYaml(): string {
  return `
- name: greeter
  topics: [amuro, sayla, U444]
  script: |-
    if (task.content.text === "quiet") return
    return \`Hello \${task.topic}, you said: \${task.content.text} (\${task.content.user} in \${task.content.channel})\`
  slack:
    token: \${JSTEST_SLACK_BOT_TOKEN}
    app_token: \${JSTEST_SLACK_APP_TOKEN}
- name: coder
  topics: [amuro]
  script: return "the job's own script ran"
  slack:
    token: \${JSTEST_SLACK_BOT_TOKEN}
    app_token: \${JSTEST_SLACK_APP_TOKEN}
    code_injection: true
- name: classic
  topics: [amuro]
  script: return "classic " + task.content.text
  slack:
    token: \${JSTEST_SLACK_BOT_TOKEN}
`;
}

/** One jobshell with one bot, on its own fake Slack: a fake's sockets carry events for every bot on them. */
async function start(jobName: string) {
  const fake = await FakeSlack.start();
  for (const u of [listed, alsoListed, listedById, unlisted]) fake.addUser(u.id, u.name);
  const logs: string[] = [];
  const log: LogSink = (e) => logs.push(`${e.level} ${e.job ?? ""} ${e.message}`);
  const js = await open({ slackApiUrl: fake.apiUrl, jobScriptTimeout: 2, log });
  await js.upload(yamlOf(jobsYaml(), jobName));
  return { fake, js, logs };
}

/** The one job of the YAML list named `name`. */
function yamlOf(yaml: string, name: string): string {
  const parts = yaml.split(/\n(?=- name: )/).filter((p) => p.startsWith("- name: "));
  return parts.find((p) => p.startsWith(`- name: ${name}\n`))!;
}

/** Send a DM and return the bot's reply to it. */
async function ask(fake: FakeSlack, user: { id: string }, text: string, timeoutMs = 10_000): Promise<string> {
  const from = fake.posted.length;
  fake.sendDM(user.id, text);
  return (await fake.nextPost(dm(user), from, timeoutMs)).text;
}

beforeAll(() => {
  process.env.JSTEST_SLACK_BOT_TOKEN = "xoxb-fake-bot";
  process.env.JSTEST_SLACK_APP_TOKEN = "xapp-fake-app";
});

describe("a Slack bot over Socket Mode", () => {
  let fake: FakeSlack;
  let js: JobShell;
  let logs: string[];

  beforeAll(async () => {
    ({ fake, js, logs } = await start("greeter"));
    await fake.until(() => fake.connected("socket") === 1, 10_000, "the bot's socket");
  });
  afterAll(async () => {
    await js?.close();
    await fake?.close();
  });

  it("answers a direct message from a user named in its topics with the job's return value", async () => {
    const reply = await ask(fake, listed, "hi there");
    expect(reply).toBe(`Hello amuro, you said: hi there (U111 in DU111)`);
    expect(fake.calls.find((c) => c.method === "apps.connections.open")?.token).toBe("xapp-fake-app");
    expect(fake.calls.find((c) => c.method === "chat.postMessage")?.token).toBe("xoxb-fake-bot");
  });

  it("gives the user name as task.topic also to a user allowed by id", async () => {
    expect(await ask(fake, listedById, "by id")).toBe(`Hello kai, you said: by id (U444 in DU444)`);
  });

  it("acknowledges every envelope at once, so that Slack never sends one again", async () => {
    await ask(fake, alsoListed, "ack me");
    await fake.until(() => [...fake.envelopes.keys()].every((id) => fake.acks.has(id)), 5000, "every ack");
    expect([...fake.envelopes.values()].every((attempt) => attempt === 0)).toBe(true);
  });

  it("answers a message Slack delivers twice only once", async () => {
    const before = fake.posted.length;
    await ask(fake, listed, "once");
    fake.sendDM(listed.id, "first of two");
    fake.redeliver();
    await fake.nextPost(dm(listed), before + 1);
    await ask(fake, listed, "after");
    expect(fake.posted.slice(before).map((p) => p.text.replace(/^Hello amuro, you said: (.*) \(.*$/, "$1"))).toEqual(["once", "first of two", "after"]);
  });

  it("ignores a user Slack does not know", async () => {
    fake.sendDM("U404", "who am I");
    await ask(fake, listed, "known");
    await expect.poll(() => logs.some((l) => l.includes("ignored a direct message from U404:")), { timeout: 5000 }).toBe(true);
    expect(fake.posted.some((p) => p.channel === "DU404")).toBe(false);
  });

  it("ignores users not in its topics, and logs them", async () => {
    const before = fake.posted.length;
    fake.sendDM(unlisted.id, "let me in");
    // A listed user's answer arriving afterwards shows the unlisted message was handled first.
    await ask(fake, listed, "after char");
    expect(fake.posted.slice(before).filter((p) => p.channel === dm(unlisted))).toEqual([]);
    await expect.poll(() => logs.some((l) => l.includes("ignored a direct message from U222 (char)")), { timeout: 5000 }).toBe(true);
  });

  it("ignores its own messages and edits, and answers each message once", async () => {
    const before = fake.posted.length;
    fake.sendDM(listed.id, "edited text", { subtype: "message_changed" });
    await ask(fake, listed, "one");
    await ask(fake, listed, "two");
    // Its own two replies came back as events (the fake echoes them) and made no further posts.
    expect(fake.posted.slice(before).map((p) => p.text)).toEqual([
      "Hello amuro, you said: one (U111 in DU111)",
      "Hello amuro, you said: two (U111 in DU111)",
    ]);
  });

  it("posts nothing when the job returns nothing", async () => {
    const before = fake.posted.length;
    fake.sendDM(listed.id, "quiet");
    await ask(fake, listed, "loud");
    expect(fake.posted.slice(before).map((p) => p.text)).toEqual(["Hello amuro, you said: loud (U111 in DU111)"]);
  });

  it("looks each user up once", async () => {
    await ask(fake, listed, "cache check");
    expect(fake.calls.filter((c) => c.method === "users.info" && c.params.user === listed.id)).toHaveLength(1);
  });

  it("reconnects when Slack sends a disconnect frame, and answers the next message", async () => {
    const opened = fake.opened.socket;
    fake.askToReconnect();
    await fake.until(() => fake.opened.socket > opened && fake.connected("socket") === 1, 10_000, "a new socket");
    expect(await ask(fake, listed, "after refresh")).toContain("after refresh");
  });

  it("reconnects when the socket drops, and answers the next message", async () => {
    const opened = fake.opened.socket;
    fake.dropSockets();
    await fake.until(() => fake.opened.socket > opened && fake.connected("socket") === 1, 10_000, "a new socket");
    expect(await ask(fake, listed, "after drop")).toContain("after drop");
  });

  it("stops the bot when its job is removed", async () => {
    await internals(js).removeJob("greeter");
    await fake.until(() => fake.connected("socket") === 0, 10_000, "the socket to close");
  });
});

describe("a Slack bot with code_injection", () => {
  let fake: FakeSlack;
  let js: JobShell;

  beforeAll(async () => {
    ({ fake, js } = await start("coder"));
    await fake.until(() => fake.connected("socket") === 1, 10_000, "the bot's socket");
  });
  afterAll(async () => {
    await js?.close();
    await fake?.close();
  });

  it("runs the message as code and posts its return value", async () => {
    expect(await ask(fake, listed, "return 6 * 7")).toBe("42");
    const fenced = "```\nconst who = task.topic\nreturn {who, text: task.content.text.length}\n```";
    expect(await ask(fake, listed, fenced)).toBe(JSON.stringify({ who: "amuro", text: fenced.length }, null, 2));
  });

  it("gives the code the job builtins", async () => {
    const chain = "const id = await issue('nobody.listens', {n: [1, 2]})\nconst r = await waitfor(id, 5)\nreturn [r.status, r.content.n.length]";
    expect(await ask(fake, listed, chain)).toBe(JSON.stringify(["completed", 2], null, 2));
    expect(await ask(fake, listed, "await sleep(0.01); return MU({a: 1}).a + json.dumps([1])")).toBe("1[1]");
  });

  it("undoes Slack's escapes before parsing", async () => {
    expect(await ask(fake, listed, "return 1 &lt; 2 &amp;&amp; 3 &gt; 2")).toBe("true");
  });

  it.each([
    ["import x from 'fs'\nreturn 1", "line 1: `import` declarations are not allowed"],
    ["const fs = await import('fs')", "line 1: `import()` is not allowed"],
    ["return import.meta.url", "line 1: `import.meta` is not allowed"],
    ["let s = 0\nfor (let i = 0; i < 3; i++) s += i\nreturn s", "line 2: `for` loops are not allowed"],
    ["for (const k in {a: 1}) {}", "line 1: `for ... in` loops are not allowed"],
    ["const f = () => {\n  for (const x of [1]) {}\n}", "line 2: `for ... of` loops are not allowed"],
    ["let i = 0\n\nwhile (i < 3) i++", "line 3: `while` loops are not allowed"],
    ["do { } while (false)", "line 1: `do ... while` loops are not allowed"],
  ])("refuses %j, saying which line", async (code, why) => {
    const reply = await ask(fake, listed, code);
    expect(reply).toContain("Refused");
    expect(reply).toContain(why);
  });

  it("reports a syntax error with its line", async () => {
    expect(await ask(fake, listed, "return 1 +")).toMatch(/^SyntaxError: .*\(line 1:\d+\)$/);
  });

  it("cuts a long result to 4000 characters without splitting one", async () => {
    const reply = await ask(fake, listed, 'return "x".repeat(10000)');
    expect(reply).toHaveLength(4000);
    expect(reply.startsWith("x".repeat(3999))).toBe(true);
    const emoji = await ask(fake, listed, 'return "a" + "😀".repeat(5000)');
    expect(Array.from(emoji)).toHaveLength(4000);
    expect(emoji).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });

  it("posts a thrown error back as a short message", async () => {
    const reply = await ask(fake, listed, 'const a = 1\nthrow new Error("boom\\nsecond line")');
    expect(reply).toBe("Error: boom");
    expect(await ask(fake, listed, "const a = 1\nthrow new Error('bang')")).toBe("Error: bang (line 2:7)");
    expect(await ask(fake, listed, "return null.x")).toMatch(/^TypeError: Cannot read properties of null .*\(line 1:\d+\)$/);
    expect(await ask(fake, listed, "return nope")).toMatch(/^ReferenceError: nope is not defined \(line 1:\d+\)$/);
  });

  it("stops runaway code at the time limit and keeps answering", async () => {
    expect(await ask(fake, listed, "await new Promise(() => {})")).toMatch(/^ScriptTimeoutError: .*job_script_timeout \(2 s\)/);
    expect(await ask(fake, listed, "const f = async () => { await sleep(0); return f() }\nreturn f()")).toMatch(/job_script_timeout/);
    expect(await ask(fake, listed, "const f = (n) => f(n + 1)\nreturn f(0)")).toMatch(/Maximum call stack size exceeded/);
    // Code that never yields to the event loop would hold the whole process without its own context.
    expect(await ask(fake, listed, "const f = async () => { await null; return f() }\nreturn f()")).toMatch(/job_script_timeout/);
    expect(await ask(fake, listed, 'Function("while (true) {}")()')).toMatch(/job_script_timeout/);
    expect(await ask(fake, listed, "await sleep(0.01)\n;[].constructor.constructor('for (;;) {}')()")).toMatch(/job_script_timeout/);
    expect(await ask(fake, listed, "return 'still here'")).toBe("still here");
  });
});

describe("a Slack bot when its jobshell closes", () => {
  it("still answers the message it is working on", async () => {
    const { fake, js } = await start("coder");
    try {
      await fake.until(() => fake.connected("socket") === 1, 10_000, "the bot's socket");
      const from = fake.posted.length;
      fake.sendDM(listed.id, "await sleep(0.5)\nreturn 'late answer'");
      await expect.poll(() => internals(js).metrics.totals().issued, { timeout: 5000 }).toBe(1);
      await js.close();
      expect(fake.posted.slice(from).map((p) => p.text)).toEqual(["late answer"]);
      expect(fake.connected()).toBe(0);
    } finally {
      await js.close();
      await fake.close();
    }
  });
});

describe("a Slack bot over RTM (classic tokens)", () => {
  let fake: FakeSlack;
  let js: JobShell;

  beforeAll(async () => {
    ({ fake, js } = await start("classic"));
    await fake.until(() => fake.connected("rtm") === 1, 10_000, "the bot's RTM socket");
  });
  afterAll(async () => {
    await js?.close();
    await fake?.close();
  });

  it("answers a direct message", async () => {
    expect(await ask(fake, listed, "hello")).toBe("classic hello");
    expect(fake.connected("socket")).toBe(0);
  });

  it("ignores an unlisted user", async () => {
    const before = fake.posted.length;
    fake.sendDM(unlisted.id, "hello");
    await ask(fake, listed, "next");
    expect(fake.posted.slice(before).map((p) => p.channel)).toEqual([dm(listed)]);
  });

  it("reconnects after goodbye and after a dropped socket", async () => {
    let opened = fake.opened.rtm;
    fake.askToReconnect();
    await fake.until(() => fake.opened.rtm > opened && fake.connected("rtm") === 1, 10_000, "a new RTM socket");
    expect(await ask(fake, listed, "after goodbye")).toBe("classic after goodbye");
    opened = fake.opened.rtm;
    fake.dropSockets();
    await fake.until(() => fake.opened.rtm > opened && fake.connected("rtm") === 1, 10_000, "a new RTM socket");
    expect(await ask(fake, listed, "after drop")).toBe("classic after drop");
  });
});
