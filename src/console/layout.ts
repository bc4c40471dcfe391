// The frame of every console page: head, navigation, the live-connection indicator and sign-out; and
// how a page is sent (the server's strict CSP, never cached, since every page shows the queue as it is now).
import type { ServerResponse } from "node:http";
import { securityHeaders } from "../server/http.js";
import { assetUrl } from "./assets.js";
import { html, type SafeHtml } from "./html.js";


const views: [path: string, label: string][] = [
  ["/console", "Overview"],
  ["/console/tasks", "Tasks"],
  ["/console/issue", "Issue"],
  ["/console/jobs", "Jobs"],
  ["/console/debug", "Debug"],
  ["/console/transactions", "Transactions"],
];

export interface PageOptions {
  title: string;
  /** the navigation entry to mark as current */
  current: string;
  /** the page's own module in assets/, if it has one */
  module?: string;
  /** whether a sign-out button is shown (a token is set, so there is a session) */
  signOut?: boolean;
  /** the mode and location, shown in the header */
  where?: string;
}

export function page(options: PageOptions, body: SafeHtml): SafeHtml {
  const nav = views.map(
    ([path, label]) => html`<li><a href="${path}"${path === options.current ? html` aria-current="page"` : ""}>${label}</a></li>`,
  );
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${options.title} · jobshell</title>
<link rel="stylesheet" href="${assetUrl("console.css")}">
${options.module ? html`<script type="module" src="${assetUrl(options.module)}"></script>` : ""}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/console">jobshell</a>
  <nav aria-label="Console views"><ul>${nav}</ul></nav>
  <span class="where">${options.where ?? ""}</span>
  <span class="live" id="live" role="status" aria-live="polite" data-state="none"></span>
  ${options.signOut ? html`<form method="post" action="/console/logout" class="signout"><button type="submit">Sign out</button></form>` : ""}
</header>
<main id="main">
<h1>${options.title}</h1>
${body}
</main>
</body>
</html>
`;
}

export function sendPage(res: ServerResponse, markup: SafeHtml, status = 200): void {
  const text = markup.text;
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...securityHeaders,
    // With no-referrer a browser sends `Origin: null` on a form's POST, which the server's Origin check refuses.
    "referrer-policy": "same-origin",
  });
  res.end(text);
}

/** A 303 to a console URL, after a form's POST. */
export function seeOther(res: ServerResponse, location: string): void {
  res.writeHead(303, { location, "content-length": 0, "cache-control": "no-store" });
  res.end();
}
