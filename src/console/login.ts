// `/console/login`: the sign-in form. The server checks the token and sets the session cookie
// (POST /console/login); this page only asks for it, and says when a try failed.
import { nextPath } from "../server/session.js";
import { html, type SafeHtml } from "./html.js";
import { page } from "./layout.js";

export function loginView(query: URLSearchParams): SafeHtml {
  const failed = query.has("failed");
  const body = html`
${failed ? html`<div class="error" role="alert">That token was not accepted. Try again.</div>` : ""}
<form method="post" action="/console/login" class="stack narrow">
  <input type="hidden" name="next" value="${nextPath(query.get("next"))}">
  <label for="token">API token</label>
  <input id="token" name="token" type="password" required autocomplete="current-password" autofocus>
  <p class="note">The token the server was started with (<code>JOBSHELL_API_TOKEN</code>).</p>
  <div><button type="submit">Sign in</button></div>
</form>`;
  return page({ title: "Sign in", current: "" }, body);
}
