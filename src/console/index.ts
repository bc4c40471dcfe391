// The web console's routes, served beside the REST API on the same port and with the same token:
// server-rendered pages under `/console` (readable without JavaScript), forms that post back to
// them, and the assets their small modules and stylesheet come from.
import type { IncomingMessage, ServerResponse } from "node:http";
import { JobDefinitionError } from "../errors.js";
import type { JobShell } from "../jobshell.js";
import { internals } from "../internals.js";
import { canWrite } from "../server/access.js";
import { HttpError, mediaType, readBody, sendJson, type Route } from "../server/http.js";
import { sendAsset } from "./assets.js";
import { debugView } from "./debug.js";
import { html } from "./html.js";
import { issueView, taskOfForm } from "./issue.js";
import { jobsView, jobView, type EditorState } from "./jobs.js";
import { seeOther, sendPage } from "./layout.js";
import { loginView } from "./login.js";
import { overview } from "./overview.js";
import { taskView } from "./task.js";
import { tasksView } from "./tasks.js";
import { transactionsView } from "./transactions.js";
import { View, type ConsoleOptions } from "./view.js";

export type { ConsoleOptions } from "./view.js";

/** A form's fields; forms post application/x-www-form-urlencoded. */
async function formOf(req: IncomingMessage): Promise<URLSearchParams> {
  const type = mediaType(req);
  if (type !== "application/x-www-form-urlencoded") {
    throw new HttpError("unsupported_media_type", `the console's forms post application/x-www-form-urlencoded, not ${type || "no content type"}`);
  }
  return new URLSearchParams((await readBody(req)).toString("utf8"));
}

/** The server refuses writes without the right to write before any route runs; this says so again here. */
function checkWrite(req: IncomingMessage): void {
  if (!canWrite(req)) throw new HttpError("read_only", "this console is read-only: nothing can be changed from it");
}

/** The origin the server was reached at, for the curl command a task page offers. */
function originOf(req: IncomingMessage): string {
  return `http://${req.headers.host ?? "127.0.0.1:8080"}`;
}

export function consoleRoutes(js: JobShell, options: ConsoleOptions = {}): Route[] {
  const view = (req: IncomingMessage) => new View(js, req, options);
  // A page that cannot be shown (an unknown task or job) is a page too, saying why, with the navigation.
  const page = (path: RegExp, get: (req: IncomingMessage, res: ServerResponse, params: string[], query: URLSearchParams) => Promise<void>): Route => ({
    path,
    methods: {
      GET: async (req, res, params, query) => {
        try {
          await get(req, res, params, query);
        } catch (err) {
          if (!(err instanceof HttpError) || err.status >= 500 || res.headersSent || !(req.headers.accept ?? "").includes("text/html")) throw err;
          sendPage(res, view(req).page({ title: "Not shown", current: "" }, html`<div class="error" role="alert">${err.detail}</div>`), err.status);
        }
      },
    },
  });
  return [
    page(/^\/console\/?$/, async (req, res) => sendPage(res, await overview(view(req)))),
    page(/^\/console\/assets\/([0-9a-f]{1,64})\/([a-z0-9-]+\.(?:js|css|svg))$/, async (_req, res, [version, name]) => sendAsset(res, version, name)),
    page(/^\/console\/login$/, async (_req, res, _p, query) => sendPage(res, loginView(query))),
    page(/^\/console\/tasks$/, async (req, res, _p, query) => {
      // A whole taskid is found at once: its page.
      const find = query.get("find")?.trim().toLowerCase() ?? "";
      if (/^[0-9a-f]{32}$/.test(find)) return seeOther(res, `/console/tasks/${find}`);
      sendPage(res, await tasksView(view(req), query));
    }),
    page(/^\/console\/tasks\/([0-9a-f]{32})$/, async (req, res, [taskid]) => {
      const markup = await taskView(view(req), taskid, originOf(req));
      if (!markup) throw new HttpError("unknown_task", `no record of task ${taskid}: it never was, or its record expired (task_record_ttl)`);
      sendPage(res, markup);
    }),
    {
      path: /^\/console\/issue$/,
      methods: {
        GET: async (req, res) => sendPage(res, issueView(view(req))),
        POST: async (req, res) => {
          checkWrite(req);
          const fields = await formOf(req);
          const again = fields.get("again");
          if (again !== null) {
            // Issue again: the task of that record, with its topic, content and expire.
            const record = /^[0-9a-f]{32}$/.test(again) ? await js.record(again) : undefined;
            if (!record) throw new HttpError("unknown_task", `no record of task ${JSON.stringify(again)} to issue again: its record expired (task_record_ttl)`);
            const taskid = await js.task(record.topic, record.dictionary.content, record.expire);
            return seeOther(res, `/console/tasks/${taskid}`);
          }
          const form = { topic: fields.get("topic") ?? "", content: fields.get("content") ?? "{}", expire: fields.get("expire") ?? "" };
          let task: ReturnType<typeof taskOfForm>;
          try {
            task = taskOfForm(form);
          } catch (err) {
            if (req.headers.accept === "application/json") throw new HttpError("invalid_body", (err as Error).message);
            return sendPage(res, issueView(view(req), form, (err as Error).message), 400);
          }
          const taskid = await js.task(task.topic, task.content, task.expire);
          if (req.headers.accept === "application/json") return sendJson(res, 201, { taskid }, { location: `/console/tasks/${taskid}` });
          seeOther(res, `/console/tasks/${taskid}`);
        },
      },
    },
    {
      path: /^\/console\/jobs$/,
      methods: {
        GET: async (req, res) => sendPage(res, jobsView(view(req))),
        POST: async (req, res) => {
          checkWrite(req);
          const fields = await formOf(req);
          const state: EditorState = { yaml: fields.get("yaml") ?? "", replace: fields.get("replace") === "1" };
          try {
            const names = await js.upload(state.yaml, { replace: state.replace, source: "<upload>" });
            if (names.length === 0) {
              state.message = "the YAML holds no job definitions: write a list of jobs or one job";
              return sendPage(res, jobsView(view(req), state), 400);
            }
            seeOther(res, names.length === 1 ? `/console/jobs/${encodeURIComponent(names[0])}` : "/console/jobs");
          } catch (err) {
            if (!(err instanceof JobDefinitionError)) throw err;
            state.problems = err.problems;
            sendPage(res, jobsView(view(req), state), 400);
          }
        },
      },
    },
    page(/^\/console\/jobs\/([^/]+)$/, async (req, res, [name], query) => {
      const job = js.jobs().find((d) => d.name === name);
      if (!job) throw new HttpError("unknown_job", `no job is named ${JSON.stringify(name)}`);
      sendPage(res, jobView(view(req), job, query.get("confirm") === "delete"));
    }),
    {
      path: /^\/console\/jobs\/([^/]+)\/delete$/,
      methods: {
        POST: async (req, res, [name]) => {
          checkWrite(req);
          await formOf(req);
          if (!(await internals(js).removeJob(name))) throw new HttpError("unknown_job", `no job is named ${JSON.stringify(name)}`);
          seeOther(res, "/console/jobs");
        },
      },
    },
    page(/^\/console\/debug$/, async (req, res) => sendPage(res, debugView(view(req)))),
    page(/^\/console\/transactions$/, async (req, res, _p, query) => sendPage(res, await transactionsView(view(req), query))),
  ];
}
