// A Slack bot runs once per deployment, whatever the number of worker processes; a bot that cannot
// start says why.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryBackend } from "../../src/backends/memory.js";
import type { LogSink } from "../../src/builtins.js";
import { parseDefinitions } from "../../src/definitions.js";
import { open } from "../../src/jobshell.js";
import { SlackBots } from "../../src/slack/index.js";
import { FakeSlack } from "./fake-slack.js";

const botYaml = (token: string, appToken = "xapp-fake-app") => `
- name: leased
  topics: [amuro]
  script: return "pong"
  slack:
    token: ${token}
    app_token: ${appToken}
`;

describe("Slack bots across worker processes", () => {
  let fake: FakeSlack;
  const backend = new MemoryBackend({ taskRecordTtl: 60, debugChannel: "jstest-slack-lease" });
  const logs: string[] = [];
  const log: LogSink = (e) => logs.push(`${e.level} ${e.message}`);
  const processes: SlackBots[] = [];
  const worker = () => {
    const bots = new SlackBots({
      backend,
      params: { slackApiUrl: fake.apiUrl, jobScriptTimeout: 5 },
      log,
      issue: async () => "0".repeat(32),
      leaseSeconds: 1.5,
      env: { JSTEST_BOT: "xoxb-fake-bot" },
    });
    processes.push(bots);
    return bots;
  };

  beforeAll(async () => {
    fake = await FakeSlack.start();
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await fake.close();
    await backend.close();
  });

  it("runs each bot in one process only, and another takes it over when that one stops", async () => {
    const definitions = parseDefinitions(botYaml("${JSTEST_BOT}"), "<test>");
    const first = worker();
    const second = worker();
    await Promise.all([first.sync(definitions), second.sync(definitions)]);
    await fake.until(() => fake.connected("socket") === 1, 10_000, "one socket");
    const holder = first.active.has("leased") ? first : second;
    const other = holder === first ? second : first;
    expect(other.active.has("leased")).toBe(false);
    expect(holder.active.get("leased")).toBe("socket-mode");
    // Renewals keep it where it is.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(fake.opened.socket).toBe(1);
    await holder.stop();
    await fake.until(() => other.active.has("leased") && fake.connected("socket") === 1, 10_000, "the takeover");
    expect(fake.opened.socket).toBe(2);
    await other.sync([]);
    await fake.until(() => fake.connected("socket") === 0, 10_000, "the socket to close");
  });

  it("starts one bot for two jobshells with workers on one queue", async () => {
    process.env.JSTEST_LEASE_BOT = "xoxb-fake-bot";
    const opened = fake.opened.socket;
    const options = { backend, slackApiUrl: fake.apiUrl, log };
    const a = await open(options);
    const b = await open(options);
    try {
      await a.upload(botYaml("${JSTEST_LEASE_BOT}").replace("name: leased", "name: shared-bot"));
      await fake.until(() => fake.opened.socket === opened + 1, 10_000, "the bot's socket");
      fake.addUser("U111", "amuro");
      const from = fake.posted.length;
      fake.sendDM("U111", "ping");
      expect((await fake.nextPost("DU111", from)).text).toBe("pong");
      expect(fake.opened.socket).toBe(opened + 1);
    } finally {
      await a.close();
      await b.close();
    }
    await fake.until(() => fake.connected("socket") === 0, 10_000, "the socket to close");
  });

  it("stops a bot that is still waiting for Slack at once", async () => {
    const silent = http.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const bots = new SlackBots({
        backend,
        params: { slackApiUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api`, jobScriptTimeout: 5 },
        log,
        issue: async () => "0".repeat(32),
        env: { JSTEST_BOT: "xoxb-fake-bot" },
      });
      const syncing = bots.sync(parseDefinitions(botYaml("${JSTEST_BOT}").replace("name: leased", "name: unanswered"), "<test>"));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const began = performance.now();
      await bots.stop();
      await syncing;
      // Slack's requests time out after 30 s: stopping must not wait for that.
      expect(performance.now() - began).toBeLessThan(10_000);
      expect(bots.active.size).toBe(0);
      expect(logs.join("\n")).not.toContain("bot unanswered could not start");
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it("says which environment variable a token names when it is not set", async () => {
    const bots = worker();
    await bots.sync(parseDefinitions(botYaml("${JSTEST_SLACK_UNSET_TOKEN}"), "<test>"));
    expect(bots.active.size).toBe(0);
    expect(logs.join("\n")).toContain("job leased: slack.token refers to the environment variable JSTEST_SLACK_UNSET_TOKEN, which is not set");
    await bots.stop();
  });

  it("says so when Slack refuses a token, and does not retry it until the definition changes", async () => {
    const bots = worker();
    await bots.sync(parseDefinitions(botYaml("xoxb-wrong"), "<test>"));
    expect(logs.join("\n")).toContain("bot leased could not start: Slack auth.test failed: invalid_auth");
    const calls = fake.calls.length;
    await bots.sync(parseDefinitions(botYaml("xoxb-wrong"), "<test>"));
    expect(fake.calls.length).toBe(calls);
    await bots.sync(parseDefinitions(botYaml("${JSTEST_BOT}", "xapp-wrong"), "<test>"));
    expect(logs.join("\n")).toContain("Slack apps.connections.open failed: invalid_auth");
    await bots.stop();
  });
});
