// The job definitions of an AMQP queue: one shared document (./document.ts), so every worker sees an
// upload at once.
import type { JobStore } from "../../backend.js";
import { mergeDefinitions, type JobDefinition } from "../../definitions.js";
import type { SharedDocument } from "./document.js";

export class AmqpJobStore implements JobStore {
  constructor(private readonly document: () => SharedDocument<JobDefinition[]>) {}

  list(): Promise<JobDefinition[]> {
    return this.document().read();
  }

  async put(definitions: JobDefinition[], replace: boolean): Promise<void> {
    await this.document().update((current) => mergeDefinitions(current, definitions, replace));
  }

  async remove(name: string): Promise<boolean> {
    let removed = false;
    await this.document().update((current) => {
      const kept = current.filter((d) => d.name !== name);
      removed = kept.length < current.length;
      return removed ? kept : undefined;
    });
    return removed;
  }

  watch(onChange: () => void): Promise<() => Promise<void>> {
    return this.document().watch(onChange);
  }
}
