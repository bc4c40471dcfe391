// The jobs this process knows, indexed by topic, with their scripts compiled once.
import type { JobDefinition } from "./definitions.js";
import { compileScript, type CompiledScript } from "./script.js";

export interface RegisteredJob {
  definition: JobDefinition;
  /** absent for a Slack job with code_injection: its messages are its code */
  run?: CompiledScript;
}

export class Registry {
  private byName = new Map<string, RegisteredJob>();
  private byTopic = new Map<string, RegisteredJob[]>();

  /** Replace the whole set; scripts that did not change are not compiled again. */
  set(definitions: JobDefinition[]): void {
    const previous = this.byName;
    this.byName = new Map();
    this.byTopic = new Map();
    for (const definition of definitions) {
      const old = previous.get(definition.name);
      // With code_injection the messages are the code: the job's own script is never run.
      const script = definition.slack?.code_injection ? undefined : definition.script;
      const run =
        script === undefined ? undefined : old?.run && old.definition.script === script ? old.run : compileScript(definition.name, script);
      const job: RegisteredJob = { definition, run };
      this.byName.set(definition.name, job);
      // A Slack job's topics are user names: its tasks come from its bot, addressed to it by name.
      if (definition.slack) continue;
      for (const topic of definition.topics) {
        const list = this.byTopic.get(topic);
        if (list) list.push(job);
        else this.byTopic.set(topic, [job]);
      }
    }
  }

  /** The jobs a task runs: the one it names, or every job on its topic. */
  jobsFor(topic: string, jobName?: string): RegisteredJob[] {
    if (jobName !== undefined) {
      const job = this.byName.get(jobName);
      return job ? [job] : [];
    }
    return this.byTopic.get(topic) ?? [];
  }

  get(name: string): RegisteredJob | undefined {
    return this.byName.get(name);
  }

  list(): JobDefinition[] {
    return [...this.byName.values()].map((j) => j.definition);
  }

  get size(): number {
    return this.byName.size;
  }
}

/**
 * When no job handles `topic` (as the worker routes it: Slack jobs' topics are user names), one line
 * saying so, with the nearest topic known; undefined when a job does. The task is issued all the
 * same (a job uploaded later still sees later tasks): this is for the person who typed it.
 */
export function unhandledTopic(definitions: readonly JobDefinition[], topic: string): string | undefined {
  const topics = new Set(definitions.filter((d) => !d.slack).flatMap((d) => d.topics));
  if (topics.has(topic)) return undefined;
  let nearest: string | undefined;
  let best = Infinity;
  for (const known of topics) {
    const distance = editDistance(topic.toLowerCase(), known.toLowerCase());
    if (distance < best) [nearest, best] = [known, distance];
  }
  // A suggestion only when it is a plausible typo: a third of the topic at most.
  const hint = nearest !== undefined && best <= Math.max(1, Math.floor(topic.length / 3)) ? ` (did you mean '${nearest}'?)` : "";
  return `no job handles topic '${topic}'${hint}`;
}

/** Levenshtein distance, for the suggestion above. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length];
}
