// The two Slack transports on their own: keep-alive and reconnection.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RtmTransport } from "../../src/slack/transport-rtm.js";
import { SocketModeTransport } from "../../src/slack/transport-socket-mode.js";
import type { SlackMessageEvent, SlackTransport } from "../../src/slack/transport.js";
import { SlackWebApi } from "../../src/slack/web-api.js";
import { FakeSlack } from "./fake-slack.js";

const timings = { helloTimeoutMs: 5000, pingIntervalMs: 300, maxBackoffMs: 2000 };

describe.each([
  ["socket-mode", "socket"],
  ["rtm", "rtm"],
] as const)("the %s transport", (kind, socketKind) => {
  let fake: FakeSlack;
  let transport: SlackTransport;
  const received: SlackMessageEvent[] = [];

  beforeAll(async () => {
    fake = await FakeSlack.start();
    transport =
      kind === "socket-mode"
        ? new SocketModeTransport(new SlackWebApi(fake.apiUrl, fake.appToken), timings)
        : new RtmTransport(new SlackWebApi(fake.apiUrl, fake.botToken), timings);
    await transport.start({ onMessage: (e) => received.push(e) });
  });
  afterAll(async () => {
    await transport?.stop();
    await fake?.close();
  });

  it("delivers a direct message as a message event of an im channel", async () => {
    const ts = fake.sendDM("U111", "hi");
    await expect.poll(() => received.find((e) => e.ts === ts), { timeout: 5000 }).toBeTruthy();
    expect(received.find((e) => e.ts === ts)).toMatchObject({ type: "message", user: "U111", text: "hi", channel: "DU111", channel_type: "im" });
  });

  it("opens a new connection when the link goes silent", async () => {
    const opened = fake.opened[socketKind];
    fake.freezeSockets();
    await fake.until(() => fake.opened[socketKind] > opened, 10_000, "a new connection");
    const ts = fake.sendDM("U111", "after silence");
    await expect.poll(() => received.some((e) => e.ts === ts), { timeout: 5000 }).toBe(true);
  });

  it("keeps trying while Slack cannot be reached, and connects when it can", async () => {
    const opened = fake.opened[socketKind];
    const [appToken, botToken] = [fake.appToken, fake.botToken];
    // Slack refuses the connection for a while, then accepts it again.
    fake.appToken = "xapp-rotated";
    fake.botToken = "xoxb-rotated";
    fake.dropSockets();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(fake.opened[socketKind]).toBe(opened);
    [fake.appToken, fake.botToken] = [appToken, botToken];
    await fake.until(() => fake.opened[socketKind] > opened && fake.connected(socketKind) === 1, 10_000, "the connection back");
  });

  it("closes its socket on stop and does not come back", async () => {
    await transport.stop();
    await fake.until(() => fake.connected() === 0, 5000, "the socket to close");
    const opened = fake.opened[socketKind];
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(fake.opened[socketKind]).toBe(opened);
  });
});
