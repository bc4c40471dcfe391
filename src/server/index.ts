// `jobshell serve`: the REST API over the library API, on Node's own http server.
// Loopback by default; with a token every request needs `Authorization: Bearer <token>` or the
// console's session cookie, checked before anything else about the request (guard.ts), and a token
// is required to listen beyond loopback. Every bad request gets a 4xx `{error, detail}` (errorReplies
// in errors.ts), those Node's HTTP parser refuses too. The routes are by resource: tasks.ts, jobs.ts,
// health.ts, stats.ts, transactions.ts, events.ts (the live stream), login.ts.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { consoleRoutes } from "../console/index.js";
import { ParameterError } from "../errors.js";
import type { JobShell } from "../jobshell.js";
import { canWrite } from "./access.js";
import { EventHub, eventRoutes, type EventsOptions } from "./events.js";
import { guard, isOpenPath, isWrite, type GuardOptions } from "./guard.js";
import { healthRoutes } from "./health.js";
import {
  HttpError,
  parserRefusal,
  refusalOf,
  refuseOnSocket,
  requestTarget,
  securityHeaders,
  sendError,
  type RequestTarget,
  type Route,
} from "./http.js";
import { jobRoutes } from "./jobs.js";
import { loginRoutes } from "./login.js";
import { Sessions } from "./session.js";
import { statsRoutes } from "./stats.js";
import { taskRoutes } from "./tasks.js";
import { transactionRoutes } from "./transactions.js";

export interface ServeOptions {
  port: number;
  host: string;
  /** the API token (JOBSHELL_API_TOKEN); without one only loopback is allowed */
  token?: string;
  /** a token that may only read (JOBSHELL_API_READ_TOKEN) */
  readToken?: string;
  /** every write answers 403 read_only (`jobshell serve --read-only`) */
  readOnly?: boolean;
  /** where server errors are told (default: stderr); request headers are never logged */
  log?: (line: string) => void;
  /** the server and its connections do not keep the process alive (the shell's server) */
  unref?: boolean;
  /** the live stream's intervals and bounds (GET /events) */
  events?: EventsOptions;
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1";
}

export async function serve(js: JobShell, options: ServeOptions): Promise<RunningServer> {
  const { port, host } = options;
  const token = options.token || undefined;
  const sessions = new Sessions({ write: token, read: options.readToken || undefined });
  if (!sessions.required && !isLoopback(host)) {
    throw new ParameterError(`refusing to listen on ${host} without an API token: set JOBSHELL_API_TOKEN (required beyond loopback)`);
  }
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const polls = { waits: new Set<AbortController>(), closing: false };
  const hub = await EventHub.start(js, options.events);
  const routes = [
    ...taskRoutes(js, polls),
    ...jobRoutes(js),
    ...healthRoutes(js),
    ...statsRoutes(js, hub),
    ...transactionRoutes(js),
    ...eventRoutes(hub),
    ...loginRoutes(sessions),
    ...consoleRoutes(js, { sessions: sessions.required }),
  ];
  const guarded = { sessions, readOnly: options.readOnly ?? false };

  /** the response under way on each connection: the parser's refusals must not break into one begun */
  const answering = new WeakMap<Socket, ServerResponse>();

  const server = createServer((req, res) => {
    for (const [name, value] of Object.entries(securityHeaders)) res.setHeader(name, value);
    const socket = req.socket;
    answering.set(socket, res);
    res.on("close", () => {
      if (answering.get(socket) === res) answering.delete(socket);
    });
    const refuse = (err: unknown) => {
      const refusal = refusalOf(err);
      if (refusal.error === "internal") {
        log(`jobshell serve: ${req.method} ${(req.url ?? "").split("?")[0]}: ${(err as Error)?.stack ?? String(err)}`);
      }
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      if (refusal.headers.connection === "close") {
        // The rest of a refused body is not read: the connection ends once the answer is out.
        res.on("finish", () => {
          socket.end();
          setTimeout(() => socket.destroy(), 2000).unref();
        });
      }
      sendError(res, refusal);
    };
    const answer = async () => {
      await dispatch(routes, req, res, guardedTarget(req, guarded));
    };
    answer().catch(refuse);
  });
  // What Node's HTTP parser refuses, and requests it does not pass to the handler above.
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    // Once answered, what else the parser finds in the data still arriving changes nothing.
    if (socket.writableEnded) return;
    const begun = answering.get(socket)?.headersSent === true;
    if (err.code === "ECONNRESET" || !socket.writable || begun) return void socket.destroy();
    refuseOnSocket(socket, parserRefusal(err));
  });
  server.on("connect", (req: IncomingMessage, socket: Socket) => {
    try {
      guardedTarget(req, guarded);
      throw new HttpError("method_not_allowed", "CONNECT is not served: the API has no tunnels");
    } catch (err) {
      refuseOnSocket(socket, refusalOf(err));
    }
  });
  // Keep-alive connections outlive a client's own idle timeout less often than the other way round.
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    const refused = (err: NodeJS.ErrnoException) => {
      void hub.close();
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
  if (options.unref) {
    server.unref();
    server.on("connection", (socket: Socket) => socket.unref());
  }
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${shownHost}:${address.port}`,
    close: async () => {
      if (polls.closing) return;
      polls.closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const wait of polls.waits) wait.abort();
      await hub.close();
      server.closeIdleConnections();
      // Requests under way get a few seconds to be answered; then their connections go too.
      const force = setTimeout(() => server.closeAllConnections(), 5000);
      await closed;
      clearTimeout(force);
    },
  };
}

/** The request's target, once the request has passed the guard: the token is checked first, so
 *  that nothing about the server is told to a client without it, not even which targets it refuses. */
function guardedTarget(req: IncomingMessage, options: GuardOptions): RequestTarget {
  let target: RequestTarget | undefined;
  let refused: unknown;
  try {
    target = requestTarget(req.url ?? "");
  } catch (err) {
    refused = err;
  }
  guard(req, target?.path ?? "", options);
  if (!target) throw refused;
  return target;
}

/**
 * Run the handler of the route and method the request names. Several routes may serve one path with
 * different methods (the console's page and login.ts's form both live at /console/login). A write
 * needs write access (access.ts); the sign-in and sign-out forms are for those who have none yet.
 */
async function dispatch(routes: Route[], req: IncomingMessage, res: ServerResponse, target: RequestTarget): Promise<void> {
  const { path, query } = target;
  const method = req.method === "HEAD" ? "GET" : req.method ?? "GET";
  const allow = new Set<string>();
  for (const route of routes) {
    const match = route.path.exec(path);
    if (!match) continue;
    if (!Object.hasOwn(route.methods, method)) {
      for (const m of allowedMethods(route)) allow.add(m);
      continue;
    }
    if (isWrite(req.method) && !isOpenPath(path) && !canWrite(req)) {
      throw new HttpError("read_only", `this server is read-only for this request: ${req.method} ${path} would change something`);
    }
    let params: string[];
    try {
      params = match.slice(1).map((p) => decodeURIComponent(p));
    } catch {
      throw new HttpError("invalid_path", `the path ${path} is not valid percent-encoding`);
    }
    return route.methods[method](req, res, params, query);
  }
  if (allow.size > 0) {
    const allowed = [...allow].join(", ");
    throw new HttpError("method_not_allowed", `${req.method} is not allowed on ${path} (allowed: ${allowed})`, {}, { allow: allowed });
  }
  throw new HttpError("not_found", `no such endpoint: ${req.method} ${path}`);
}

/** The route's methods, with HEAD wherever GET is, since every GET answers HEAD too. */
function allowedMethods(route: Route): string[] {
  return Object.keys(route.methods).flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m]));
}
