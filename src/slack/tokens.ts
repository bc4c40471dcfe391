// A Slack job's tokens, with `${NAME}` references to environment variables resolved when its bot
// starts (so that definitions can be shared and stored without secrets in them).
import type { JobDefinition } from "../definitions.js";
import { SlackConfigError } from "./errors.js";

export interface SlackTokens {
  /** the bot token (xoxb-...): Web API calls, and the RTM connection when there is no app token */
  token: string;
  /** the app-level token (xapp-...): a Socket Mode connection */
  appToken?: string;
}

export function resolveTokens(definition: JobDefinition, env: Record<string, string | undefined> = process.env): SlackTokens {
  const slack = definition.slack;
  if (!slack) throw new SlackConfigError(definition.name, "is not a Slack job");
  const resolve = (field: string, value: string | undefined): string => {
    const text = (value ?? "").replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const set = env[name];
      if (set === undefined || set.trim() === "") {
        throw new SlackConfigError(definition.name, `slack.${field} refers to the environment variable ${name}, which is not set`);
      }
      return set.trim();
    });
    if (text.trim() === "") throw new SlackConfigError(definition.name, `slack.${field} is empty: the bot needs its token`);
    return text.trim();
  };
  const tokens: SlackTokens = { token: resolve("token", slack.token) };
  if (slack.app_token !== undefined) tokens.appToken = resolve("app_token", slack.app_token);
  return tokens;
}
