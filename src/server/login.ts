// POST /console/login and POST /console/logout: a browser trades the token for a session cookie and
// gives it back. The sign-in page itself (GET /console/login) is the console's.
import type { ServerResponse } from "node:http";
import { HttpError, mediaType, readBody, type Route } from "./http.js";
import { nextPath, overHttps, sessionClearCookie, sessionSetCookie, type Sessions } from "./session.js";

export function loginRoutes(sessions: Sessions): Route[] {
  return [
    {
      path: /^\/console\/login$/,
      methods: {
        POST: async (req, res) => {
          const type = mediaType(req);
          if (type !== "application/x-www-form-urlencoded") {
            throw new HttpError("unsupported_media_type", `send the sign-in as a form (application/x-www-form-urlencoded), not ${type || "no Content-Type"}`);
          }
          const form = new URLSearchParams((await readBody(req, 16 * 1024)).toString("utf8"));
          const next = nextPath(form.get("next"));
          if (!sessions.required) return redirect(res, next);
          const access = sessions.tokenAccess(form.get("token") ?? "");
          if (!access) return redirect(res, `/console/login?failed=1&next=${encodeURIComponent(next)}`);
          redirect(res, next, sessionSetCookie(sessions.issue(access), overHttps(req)));
        },
      },
    },
    {
      path: /^\/console\/logout$/,
      methods: {
        POST: async (_req, res) => redirect(res, "/console/login", sessionClearCookie()),
      },
    },
  ];
}

function redirect(res: ServerResponse, location: string, cookie?: string): void {
  const headers: Record<string, string> = { location, "cache-control": "no-store", "content-length": "0" };
  if (cookie) headers["set-cookie"] = cookie;
  res.writeHead(303, headers).end();
}
