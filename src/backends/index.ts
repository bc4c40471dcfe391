// Picks the backend for the parameters. Redis and AMQP clients are loaded only when asked for,
// so that memory mode starts fast and needs neither installed server.
import type { Backend, BackendOptions } from "../backend.js";
import type { Params } from "../params.js";
import { MemoryBackend } from "./memory.js";

export async function openBackend(params: Params, namespace?: string): Promise<Backend> {
  const options: BackendOptions = { taskRecordTtl: params.taskRecordTtl, debugChannel: params.debugChannel, namespace, maxAttempts: params.maxAttempts };
  if (params.amqpUrl) {
    const { createAmqpBackend } = await import("./amqp/index.js");
    return createAmqpBackend(params.amqpUrl, { ...options, queueType: params.amqpQueueType as "classic" | "quorum" });
  }
  if (params.redisUrl) {
    const { createRedisBackend } = await import("./redis/index.js");
    return createRedisBackend(params.redisUrl, { ...options, namespace: namespace ?? params.redisPrefix, waitReplicas: params.redisWaitReplicas, scriptThreads: !params.jobInProcess });
  }
  return new MemoryBackend(options);
}
