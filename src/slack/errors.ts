// The Slack option's errors, each with a stable `code` like every other jobshell error.
import { JobshellError } from "../errors.js";

/** A Slack Web API call failed: `error` is Slack's own error string (`invalid_auth`, ...). */
export class SlackApiError extends JobshellError {
  override readonly code = "SLACK_API";
  constructor(readonly method: string, readonly error: string, detail?: string, options?: { cause?: unknown }) {
    super(`Slack ${method} failed: ${error}${detail ? ` (${detail})` : ""}`, options);
  }
}

/** A Slack job cannot start its bot: a token is missing or names an unset environment variable. */
export class SlackConfigError extends JobshellError {
  override readonly code = "SLACK_CONFIG";
  constructor(readonly job: string, message: string) {
    super(`job ${job}: ${message}`);
  }
}

/** Code sent to a code_injection bot uses a construct that is not allowed, or does not parse. */
export class CodeRefusedError extends JobshellError {
  override readonly code = "CODE_REFUSED";
  constructor(readonly problems: { line: number; column: number; what: string }[], readonly syntax = false) {
    super(problems.map((p) => `line ${p.line}: ${p.what}`).join("\n"));
  }
}
