// The HTTP plumbing of the REST API: routes, request targets, JSON replies and errors `{error, detail}`
// (also for what Node's HTTP parser refuses), bodies read with a size limit, and the small schema
// check every JSON body goes through.
import { maxHeaderSize, STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { errorReplies, errorWordOf, JobshellError, type ErrorReply, type ErrorWord } from "../errors.js";

/** Bodies larger than this are refused with 413 before they are read. */
export const maxBodyBytes = 1024 * 1024;

export type Handler = (req: IncomingMessage, res: ServerResponse, params: string[], query: URLSearchParams) => Promise<void>;

/** A resource: its path (groups are the path's parameters) and a handler per method. */
export interface Route {
  path: RegExp;
  methods: Record<string, Handler>;
}

/** A request the API refuses: a stable `error` word (errorReplies gives its status) and a sentence for people. */
export class HttpError extends JobshellError {
  override readonly code = "HTTP_ERROR";
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(
    readonly error: ErrorWord,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(detail);
    const reply: ErrorReply = errorReplies[error];
    this.status = reply.status;
    this.headers = { ...reply.headers, ...headers };
  }
}

/** The refusal that answers `err`, through errorReplies; a bug's details stay out of it. */
export function refusalOf(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const word = errorWordOf(err);
  if (word === "internal") return new HttpError(word, "the server failed on this request; see its log");
  const reply: ErrorReply = errorReplies[word];
  const fields = Object.fromEntries((reply.fields ?? []).map((f) => [f, (err as Record<string, unknown>)[f]]));
  return new HttpError(word, (err as Error).message, fields);
}

/** Sent with every response: no inline script or style, no framing, no sniffing, no referrer. */
export const securityHeaders: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** A request target: the path (not decoded) and the query. */
export interface RequestTarget {
  path: string;
  query: URLSearchParams;
}

/**
 * The request target as a path and a query. Only the origin form (`/path?query`, RFC 9112 3.2.1) is
 * a path: `//host/x`, `http://host/x` and `*` are refused, and so is `/\host/x`, which URL parsers
 * read as `//host/x`. The path is taken as sent, never through a URL parser that could find a host in it.
 */
export function requestTarget(raw: string): RequestTarget {
  const end = raw.indexOf("#");
  const target = end < 0 ? raw : raw.slice(0, end);
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  if (!/^\/(?![/\\])/.test(path)) {
    throw new HttpError("invalid_path", `the request target must be a path such as /tasks, got ${JSON.stringify(raw.slice(0, 100))}`);
  }
  return { path, query: new URLSearchParams(q < 0 ? "" : target.slice(q + 1)) };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { error: err.error, detail: err.detail, ...err.extra }, err.headers);
}

/** The refusal that answers an error of Node's HTTP parser (the `clientError` event of the server). */
export function parserRefusal(err: NodeJS.ErrnoException & { reason?: string }): HttpError {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return new HttpError("headers_too_large", `the request line and headers are larger than ${maxHeaderSize} bytes`);
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return new HttpError("payload_too_large", "the chunk extensions of the body are too large");
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return new HttpError("request_timeout", "the request did not arrive in time");
    default:
      return new HttpError("bad_request", `the request is not valid HTTP/1.1: ${err.reason ?? err.message}`);
  }
}

/**
 * Answer `err` straight on the socket, where there is no response object (a request the parser
 * refused, a CONNECT), and close. The socket is destroyed a little later rather than at once: closed
 * while the client is still sending, it would reset the connection, and the client could lose the answer.
 */
export function refuseOnSocket(socket: Duplex, err: HttpError): void {
  const text = JSON.stringify({ error: err.error, detail: err.detail, ...err.extra });
  const headers: Record<string, string | number> = {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...securityHeaders,
    ...err.headers,
    connection: "close",
  };
  const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  socket.end(`HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ""}\r\n${head}\r\n${text}`);
  setTimeout(() => socket.destroy(), 2000).unref();
}

/**
 * The whole body, at most `limit` bytes. A larger one is refused (413) as soon as its declared
 * length or the bytes received pass the limit, without reading the rest.
 */
export async function readBody(req: IncomingMessage, limit = maxBodyBytes): Promise<Buffer> {
  const tooLarge = () => new HttpError("payload_too_large", `the body is larger than ${limit} bytes`, {}, { connection: "close" });
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();
  // Read by events, not by async iteration: leaving a for-await early would destroy the socket
  // before the refusal could be sent.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off("data", onData);
      req.off("end", onEnd);
      req.pause();
      reject(tooLarge());
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    req.on("data", onData);
    req.on("end", onEnd);
    // The connection broke or the parser refused the rest of the body: the client's doing, not a bug.
    req.once("error", (err) => reject(new HttpError("bad_request", `the body did not arrive whole: ${err.message}`)));
  });
}

/** The media type of the request without its parameters, lower case; "" when none is given. */
export function mediaType(req: IncomingMessage): string {
  return (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
}

/** What `curl -d` sends unless told otherwise: taken when the body is JSON all the same. */
const curlDefault = "application/x-www-form-urlencoded";

/** A JSON object body; 415 for another media type, 400 for bad JSON or a non-object. */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = mediaType(req);
  const refused = `send the body as JSON with the header Content-Type: application/json (curl: -H 'content-type: application/json'), not ${type}`;
  // text/plain is what fetch() sends for a string body: the text is still checked as JSON.
  if (type !== "" && type !== "application/json" && type !== "text/plain" && type !== curlDefault && !type.endsWith("+json")) {
    throw new HttpError("unsupported_media_type", refused);
  }
  const text = (await readBody(req)).toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    if (type === curlDefault) throw new HttpError("unsupported_media_type", refused);
    throw new HttpError("invalid_json", `the body is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new HttpError("invalid_body", `the body must be a JSON object, got ${Array.isArray(value) ? "an array" : JSON.stringify(value)}`);
  }
  if (nestedDeeperThan(value, maxJsonDepth)) {
    throw new HttpError("invalid_body", `the body is nested deeper than ${maxJsonDepth} levels`);
  }
  return value as Record<string, unknown>;
}

/** Deeper JSON is refused: the code that copies and stores content recurses. */
export const maxJsonDepth = 100;

/** Walks without recursion, so that the check itself cannot overflow the stack. */
function nestedDeeperThan(root: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (value === null || typeof value !== "object") continue;
    if (depth > limit) return true;
    for (const child of Object.values(value)) if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
  }
  return false;
}

// --- a small schema check -----------------------------------------------------------------------

export interface FieldSchema {
  type: "string" | "number" | "boolean" | "object";
  required?: boolean;
  /** a further check; returns what is wrong, or undefined */
  check?: (value: never) => string | undefined;
}

export type ObjectSchema = Record<string, FieldSchema>;

/** Check `body` against `schema`: every problem in one 400, unknown fields included. */
export function validate(body: Record<string, unknown>, schema: ObjectSchema): void {
  const problems: string[] = [];
  for (const key of Object.keys(body)) {
    // Own keys only: `constructor` or `__proto__` must not pass as fields through Object.prototype.
    if (!Object.hasOwn(schema, key)) problems.push(`unknown field ${JSON.stringify(key)} (fields: ${Object.keys(schema).join(", ")})`);
  }
  for (const [key, field] of Object.entries(schema)) {
    const value = body[key];
    if (value === undefined) {
      if (field.required) problems.push(`${key} is required`);
      continue;
    }
    if (typeOf(value) !== field.type) {
      problems.push(`${key} must be ${field.type === "object" ? "an object" : `a ${field.type}`}, got ${typeOf(value)}`);
      continue;
    }
    const problem = field.check?.(value as never);
    if (problem) problems.push(`${key} ${problem}`);
  }
  if (problems.length > 0) throw new HttpError("invalid_body", problems.join("; "));
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}
