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
