// Parameters: one table, flags over variables over the config file over defaults.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ParameterError } from "../src/errors.js";
import { maskUrl, paramNames, paramsMarkdown, resolveParams } from "../src/params.js";

function configFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "jobshell-params-"));
  const file = join(dir, "jobshell.yaml");
  writeFileSync(file, text);
  return file;
}

describe("parameters", () => {
  it("have the documented defaults", () => {
    const p = resolveParams({ env: {}, configFile: false });
    expect(p).toMatchObject({
      jobQueueSize: 65535,
      jobQueueBulkReadSize: 32,
      redisUrl: undefined,
      amqpUrl: undefined,
      jobTransactionEvent: false,
      jobScriptTimeout: 300,
      taskRecordTtl: 3600,
      debugChannel: "xaas.hotspot.channel",
      apiUrl: "http://127.0.0.1:8080",
    });
  });

  it("take a flag over a variable over the config file", () => {
    const file = configFile("job_queue_size: 10\njob_queue_bulk_read_size: 4\ntask_record_ttl: 7\n");
    const p = resolveParams({
      given: { job_queue_size: "30" },
      env: { JOBSHELL_JOB_QUEUE_SIZE: "20", JOBSHELL_JOB_QUEUE_BULK_READ_SIZE: "8" },
      configFile: file,
    });
    expect(p.jobQueueSize).toBe(30);
    expect(p.jobQueueBulkReadSize).toBe(8);
    expect(p.taskRecordTtl).toBe(7);
  });

  it("read REDIS_URL and AMQP_URL too, and refuse both modes at once", () => {
    expect(resolveParams({ env: { REDIS_URL: "redis://h:6379" }, configFile: false }).redisUrl).toBe("redis://h:6379");
    expect(() =>
      resolveParams({ env: { REDIS_URL: "redis://h:6379", AMQP_URL: "amqp://h" }, configFile: false }),
    ).toThrow(/both set/);
  });

  it("take the queue mode from the highest-precedence source; two at one level are a conflict", () => {
    const redis = "redis://h:6379";
    const amqp = "amqp://h";
    const mode = (p: { redisUrl?: string; amqpUrl?: string }) => ({ redisUrl: p.redisUrl, amqpUrl: p.amqpUrl });
    // a flag over a variable over the config file: the other mode set lower down is dropped
    expect(mode(resolveParams({ given: { amqpUrl: amqp }, env: { REDIS_URL: redis }, configFile: false }))).toEqual({ redisUrl: undefined, amqpUrl: amqp });
    expect(mode(resolveParams({ given: { redisUrl: redis }, env: { AMQP_URL: amqp }, configFile: false }))).toEqual({ redisUrl: redis, amqpUrl: undefined });
    expect(mode(resolveParams({ given: { redisUrl: redis }, env: {}, configFile: configFile(`amqp_url: ${amqp}\n`) }))).toEqual({ redisUrl: redis, amqpUrl: undefined });
    expect(mode(resolveParams({ env: { JOBSHELL_AMQP_URL: amqp }, configFile: configFile(`redis_url: ${redis}\n`) }))).toEqual({ redisUrl: undefined, amqpUrl: amqp });
    // the same level: both flags, both variables, both in the file
    expect(() => resolveParams({ given: { redisUrl: redis, amqpUrl: amqp }, givenFrom: { redis_url: "--redis", amqp_url: "--amqp" }, env: {}, configFile: false })).toThrow(
      "redis_url (from --redis) and amqp_url (from --amqp) are both set: choose one queue mode",
    );
    expect(() => resolveParams({ env: { JOBSHELL_REDIS_URL: redis, AMQP_URL: amqp }, configFile: false })).toThrow(/JOBSHELL_REDIS_URL.*AMQP_URL.*both set/);
    expect(() => resolveParams({ env: {}, configFile: configFile(`redis_url: ${redis}\namqp_url: ${amqp}\n`) })).toThrow(/both set/);
  });

  it("name the parameter, the source and the value when a value is wrong", () => {
    const err = (() => {
      try {
        resolveParams({ env: { JOBSHELL_JOB_QUEUE_SIZE: "lots" }, configFile: false });
      } catch (e) {
        return e as ParameterError;
      }
    })();
    expect(err).toBeInstanceOf(ParameterError);
    expect(err?.message).toBe('job_queue_size (from JOBSHELL_JOB_QUEUE_SIZE) must be a positive integer, got "lots"');
    expect(() => resolveParams({ configFile: configFile("job_queu_size: 1\n"), env: {} })).toThrow(/unknown parameter job_queu_size/);
    // plain decimals only, as for every number on the command line and in the API
    for (const value of ["0x10", "1e3", " 20", "-5"]) {
      expect(() => resolveParams({ env: { JOBSHELL_JOB_QUEUE_SIZE: value }, configFile: false }), value).toThrow(/must be a positive integer/);
    }
    expect(resolveParams({ env: { JOBSHELL_JOB_SCRIPT_TIMEOUT: "2.5" }, configFile: false }).jobScriptTimeout).toBe(2.5);
    for (const key of ["constructor", "__proto__", "toString"]) {
      expect(() => resolveParams({ configFile: configFile(`${key}: 5\n`), env: {} })).toThrow(`unknown parameter ${key}`);
    }
    expect(() => resolveParams({ given: { jobScriptTimeout: -1 }, env: {}, configFile: false })).toThrow(/job_script_timeout/);
  });

  it("never show a URL's password", () => {
    expect(maskUrl("amqp://guest:secret@host:5672/vh")).toBe("amqp://guest:***@host:5672/vh");
    expect(maskUrl("redis://:secret@host:6379")).toBe("redis://:***@host:6379");
  });

  it("are all listed by --help and in the README table", () => {
    const help = execFileSync(process.execPath, ["dist/cli.js", "--help"], { encoding: "utf8" });
    for (const name of paramNames) expect(help).toContain(`--${name.replace(/_/g, "-")}`);
    expect(readFileSync("README.md", "utf8")).toContain(paramsMarkdown());
  });
});
