// Job definitions (SPEC §2): YAML from files, folders and uploads, validated strictly.
// (Parsing and validation are filled in by the definitions work; this is the contract.)

export interface SlackOptions {
  /** bot token, or a `${ENV_VAR}` reference resolved when the bot starts */
  token: string;
  /** Socket Mode app-level token (`xapp-...`), or a `${ENV_VAR}` reference */
  app_token?: string;
  code_injection: boolean;
}

export interface JobDefinition {
  name: string;
  topics: string[];
  /** the body of an async function; absent only for a slack job with code_injection */
  script?: string;
  slack?: SlackOptions;
  /** where it was loaded from: a file path, or `<upload>` */
  source: string;
}
