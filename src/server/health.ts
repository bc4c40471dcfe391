// The routes for operators: GET /healthz (is the queue answering?) and GET /metrics (Prometheus).
import { internals } from "../internals.js";
import type { JobShell } from "../jobshell.js";
import { prometheusContentType, renderPrometheus } from "../prometheus.js";
import { HttpError, sendJson, type Route } from "./http.js";

export function healthRoutes(js: JobShell): Route[] {
  return [
    {
      path: /^\/healthz$/,
      methods: {
        GET: async (_req, res) => {
          try {
            const stats = await js.stats();
            sendJson(res, 200, { status: "ok", mode: stats.mode, location: stats.location, jobs: stats.jobs, worker: internals(js).hasWorker });
          } catch (err) {
            throw new HttpError("unavailable", `the queue does not answer: ${(err as Error).message}`);
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
}
