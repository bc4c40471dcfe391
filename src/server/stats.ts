// GET /stats: what stats() shows, as JSON, with the last hour the console charts (history.ts).
import type { JobShell } from "../jobshell.js";
import type { EventHub } from "./events.js";
import { sendJson, type Route } from "./http.js";

export function statsRoutes(js: JobShell, hub: EventHub): Route[] {
  return [
    {
      path: /^\/stats$/,
      methods: {
        GET: async (_req, res) => sendJson(res, 200, { ...(await js.stats()), history: hub.history.snapshot() }),
      },
    },
  ];
}
