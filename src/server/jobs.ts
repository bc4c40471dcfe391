// The job routes: POST /jobs uploads YAML, GET /jobs lists them, GET and DELETE /jobs/{name}.
import { type JobDefinition, parseDefinitions, sameJob } from "../definitions.js";
import { JobDefinitionError } from "../errors.js";
import { internals } from "../internals.js";
import type { JobShell } from "../jobshell.js";
import { HttpError, readBody, sendJson, type Route } from "./http.js";

export function jobRoutes(js: JobShell): Route[] {
  return [
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
            // A job sent again as it is defined is no conflict (see JobShell.upload).
            const known = new Map(js.jobs().map((d) => [d.name, d]));
            const existing = definitions.filter((d) => known.has(d.name) && !sameJob(known.get(d.name)!, d)).map((d) => d.name);
            if (existing.length > 0) {
              throw new HttpError("job_exists", `already defined: ${existing.join(", ")}; POST /jobs?replace=true replaces them`, {
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
  ];
}

function unknownJob(name: string): HttpError {
  return new HttpError("unknown_job", `no job is named ${JSON.stringify(name)}`);
}

function booleanQuery(raw: string | null, name: string): boolean {
  if (raw === null || raw === "false" || raw === "0") return false;
  if (raw === "" || raw === "true" || raw === "1") return true;
  throw new HttpError("invalid_query", `${name} must be true or false, got ${JSON.stringify(raw)}`);
}

/** A job as the API shows it: Slack tokens are never sent back. */
function shownJob(d: JobDefinition): Record<string, unknown> {
  const job: Record<string, unknown> = { name: d.name, topics: d.topics };
  if (d.script !== undefined) job.script = d.script;
  if (d.slack) job.slack = { code_injection: d.slack.code_injection };
  job.source = d.source;
  return job;
}
