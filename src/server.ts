// `jobshell serve`: the REST API over the library API, on Node's own http server.
// Loopback by default; with a token every request needs `Authorization: Bearer <token>`, and a
// token is required to listen beyond loopback. Every bad request gets a 4xx `{error, detail}`.
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ClosedError, ConnectionError, JobDefinitionError, ParameterError, QueueFullError } from "./errors.js";
import { parseDefinitions, type JobDefinition } from "./definitions.js";
import { internals } from "./internals.js";
import type { JobShell } from "./jobshell.js";
import { prometheusContentType, renderPrometheus } from "./prometheus.js";
import { decimalNumber } from "./params.js";
import { hasEnded } from "./record.js";
import { HttpError, readBody, readJsonObject, sendError, sendJson, validate, type ObjectSchema } from "./server/http.js";

export interface ServeOptions {
  port: number;
  host: string;
  /** the API token (JOBSHELL_API_TOKEN); without one only loopback is allowed */
  token?: string;
  /** where server errors are told (default: stderr); request headers are never logged */
  log?: (line: string) => void;
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/** The longest `wait?timeout=` accepted, in seconds. */
export const maxWaitSeconds = 3600;

const taskSchema: ObjectSchema = {
  topic: { type: "string", required: true, check: (v: string) => (v.length === 0 ? "must not be empty" : undefined) },
  content: { type: "object" },
  expire: {
    type: "number",
    check: (v: number) => (Number.isFinite(v) && v > 0 ? undefined : `must be a positive number of seconds, got ${v}`),
  },
};

const taskidPattern = /^[0-9a-f]{32}$/;

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1";
}

export async function serve(js: JobShell, options: ServeOptions): Promise<RunningServer> {
  const { port, host } = options;
  const token = options.token === "" ? undefined : options.token;
  if (!token && !isLoopback(host)) {
    throw new ParameterError(`refusing to listen on ${host} without an API token: set JOBSHELL_API_TOKEN (required beyond loopback)`);
  }
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const tokenDigest = token ? digest(token) : undefined;
  /** long polls in progress, ended when the server closes */
  const waits = new Set<AbortController>();
  let closing = false;

  const authorized = (req: IncomingMessage): boolean => {
    if (!tokenDigest) return true;
    const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    return match !== null && timingSafeEqual(digest(match[1].trim()), tokenDigest);
  };

  const routes: Route[] = [
    {
      path: /^\/tasks$/,
      methods: {
        POST: async (req, res) => {
          const body = await readJsonObject(req);
          validate(body, taskSchema);
          let taskid: string;
          try {
            taskid = await js.task(body.topic as string, (body.content ?? {}) as Record<string, unknown>, body.expire as number | undefined);
          } catch (err) {
            if (err instanceof TypeError) throw new HttpError(400, "invalid_body", err.message);
            throw err;
          }
          sendJson(res, 201, { taskid }, { location: `/tasks/${taskid}` });
        },
      },
    },
    {
      path: /^\/tasks\/([^/]+)$/,
      methods: {
        GET: async (_req, res, [id]) => {
          const record = await js.record(checkTaskid(id));
          if (!record) throw unknownTask(id);
          sendJson(res, 200, record);
        },
      },
    },
    {
      path: /^\/tasks\/([^/]+)\/wait$/,
      methods: {
        GET: async (_req, res, [id], query) => {
          const taskid = checkTaskid(id);
          const timeout = waitTimeout(query.get("timeout"));
          const controller = new AbortController();
          waits.add(controller);
          // A client that goes away stops the wait.
          res.on("close", () => controller.abort());
          try {
            const record = await internals(js).recordWhenEnded(taskid, timeout, controller.signal);
            if (closing) throw new HttpError(503, "closing", "the server is shutting down; ask again", {}, { connection: "close" });
            if (res.destroyed) return;
            if (!record) throw unknownTask(taskid);
            // On timeout the record as it is now: its status says the task has not ended.
            sendJson(res, 200, record, { "x-jobshell-ended": String(hasEnded(record.status)) });
          } finally {
            waits.delete(controller);
          }
        },
      },
    },
    {
      path: /^\/jobs$/,
      methods: {
        GET: async (_req, res) => sendJson(res, 200, { jobs: js.jobs().map(shownJob) }),
        POST: async (req, res, _params, query) => {
          const replace = booleanQuery(query.get("replace"), "replace");
          const text = (await readBody(req)).toString("utf8");
          const definitions = parseDefinitions(text, "<upload>");
          // An upload that adds nothing is a mistake (an empty file, a wrong variable), not a success.
          if (definitions.length === 0) {
            throw new JobDefinitionError([{ file: "<upload>", message: "the body holds no job definitions: send a list of jobs or one job" }]);
          }
          if (!replace) {
            const known = new Set(js.jobs().map((d) => d.name));
            const existing = definitions.filter((d) => known.has(d.name)).map((d) => d.name);
            if (existing.length > 0) {
              throw new HttpError(409, "job_exists", `already defined: ${existing.join(", ")}; POST /jobs?replace=true replaces them`, {
                jobs: existing,
              });
            }
          }
          const names = await js.upload(text, { replace, source: "<upload>" });
          sendJson(res, 201, { jobs: names });
        },
      },
    },
    {
      path: /^\/jobs\/([^/]+)$/,
      methods: {
        GET: async (_req, res, [name]) => {
          const job = js.jobs().find((d) => d.name === name);
          if (!job) throw unknownJob(name);
          sendJson(res, 200, shownJob(job));
        },
        DELETE: async (_req, res, [name]) => {
          if (!(await internals(js).removeJob(name))) throw unknownJob(name);
          res.writeHead(204).end();
        },
      },
    },
    {
      path: /^\/healthz$/,
      methods: {
        GET: async (_req, res) => {
          try {
            const stats = await js.stats();
            sendJson(res, 200, { status: "ok", mode: stats.mode, location: stats.location, jobs: stats.jobs, worker: internals(js).hasWorker });
          } catch (err) {
            throw new HttpError(503, "unavailable", `the queue does not answer: ${(err as Error).message}`);
          }
        },
      },
    },
    {
      path: /^\/metrics$/,
      methods: {
        GET: async (_req, res) => {
          const stats = await js.stats();
          const text = renderPrometheus(internals(js).metrics, { queueDepth: stats.queueDepth, inFlight: stats.inFlight, jobs: stats.jobs });
          res.writeHead(200, { "content-type": prometheusContentType, "content-length": Buffer.byteLength(text) });
          res.end(text);
        },
      },
    },
  ];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!authorized(req)) {
      const given = req.headers.authorization === undefined ? "missing" : "wrong";
      throw new HttpError(401, "unauthorized", `${given} bearer token: send Authorization: Bearer <JOBSHELL_API_TOKEN>`, {}, {
        "www-authenticate": 'Bearer realm="jobshell"',
      });
    }
    for (const route of routes) {
      const match = route.path.exec(url.pathname);
      if (!match) continue;
      const method = req.method === "HEAD" ? "GET" : req.method ?? "GET";
      const run = Object.hasOwn(route.methods, method) ? route.methods[method] : undefined;
      if (!run) {
        const allow = allowedMethods(route).join(", ");
        throw new HttpError(405, "method_not_allowed", `${req.method} is not allowed on ${url.pathname} (allowed: ${allow})`, {}, { allow });
      }
      let params: string[];
      try {
        params = match.slice(1).map((p) => decodeURIComponent(p));
      } catch {
        throw new HttpError(400, "invalid_path", `the path ${url.pathname} is not valid percent-encoding`);
      }
      await run(req, res, params, url.searchParams);
      return;
    }
    throw new HttpError(404, "not_found", `no such endpoint: ${req.method} ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const refusal = asHttpError(err);
      if (refusal.status >= 500 && refusal.error === "internal") {
        log(`jobshell serve: ${req.method} ${(req.url ?? "").split("?")[0]}: ${(err as Error)?.stack ?? String(err)}`);
      }
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      if (refusal.headers.connection === "close") {
        // The rest of a refused body is not read: the connection ends once the answer is out.
        const socket = req.socket;
        res.on("finish", () => {
          socket?.end();
          setTimeout(() => socket?.destroy(), 2000).unref();
        });
      }
      sendError(res, refusal);
    });
  });
  // Keep-alive connections outlive a client's own idle timeout less often than the other way round.
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    const refused = (err: NodeJS.ErrnoException) => {
      reject(new ParameterError(`cannot listen on ${host}:${port}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once("error", refused);
    try {
      server.listen(port, host, () => {
        server.off("error", refused);
        resolve();
      });
    } catch (err) {
      refused(err as NodeJS.ErrnoException);
    }
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${shownHost}:${address.port}`,
    close: async () => {
      if (closing) return;
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const wait of waits) wait.abort();
      server.closeIdleConnections();
      // Requests under way get a few seconds to be answered; then their connections go too.
      const force = setTimeout(() => server.closeAllConnections(), 5000);
      await closed;
      clearTimeout(force);
    },
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse, params: string[], query: URLSearchParams) => Promise<void>;

interface Route {
  path: RegExp;
  methods: Record<string, Handler>;
}

/** The route's methods, with HEAD wherever GET is, since every GET answers HEAD too. */
function allowedMethods(route: Route): string[] {
  return Object.keys(route.methods).flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m]));
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function checkTaskid(id: string): string {
  if (!taskidPattern.test(id)) throw new HttpError(400, "invalid_taskid", `a taskid is 32 lowercase hex characters, got ${JSON.stringify(id)}`);
  return id;
}

function unknownTask(taskid: string): HttpError {
  return new HttpError(404, "unknown_task", `unknown task ${taskid} (never issued, or its record is older than task_record_ttl)`);
}

function unknownJob(name: string): HttpError {
  return new HttpError(404, "unknown_job", `no job is named ${JSON.stringify(name)}`);
}

function waitTimeout(raw: string | null): number {
  if (raw === null) return 60;
  const seconds = decimalNumber(raw);
  if (seconds === undefined || seconds > maxWaitSeconds) {
    throw new HttpError(400, "invalid_query", `timeout must be a number of seconds from 0 to ${maxWaitSeconds}, got ${JSON.stringify(raw)}`);
  }
  return seconds;
}

function booleanQuery(raw: string | null, name: string): boolean {
  if (raw === null || raw === "false" || raw === "0") return false;
  if (raw === "" || raw === "true" || raw === "1") return true;
  throw new HttpError(400, "invalid_query", `${name} must be true or false, got ${JSON.stringify(raw)}`);
}

/** A job as the API shows it: Slack tokens are never sent back. */
function shownJob(d: JobDefinition): Record<string, unknown> {
  const job: Record<string, unknown> = { name: d.name, topics: d.topics };
  if (d.script !== undefined) job.script = d.script;
  if (d.slack) job.slack = { code_injection: d.slack.code_injection };
  job.source = d.source;
  return job;
}

function asHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof JobDefinitionError) return new HttpError(400, "job_definition", err.message, { problems: err.problems });
  if (err instanceof QueueFullError) {
    return new HttpError(503, "queue_full", err.message, {}, { "retry-after": "1" });
  }
  if (err instanceof ClosedError) return new HttpError(503, "closing", err.message);
  if (err instanceof ConnectionError) return new HttpError(503, "unavailable", err.message);
  return new HttpError(500, "internal", "the server failed on this request; see its log");
}
