/**
 * What the actors count: host workers alive (idle hosts have none), lost append races
 * (another node took the log's next seq first), command batches chained behind one still
 * committing, and chained batches run again because the one ahead failed. A split node's actor
 * isolate reports its counts every second (node-isolates.ts); the ingress adds them to this
 * isolate's for `/metrics`.
 */

export interface ActorMetrics {
  readonly activeHostWorkers: number
  readonly appendRaces: number
  readonly chainedBatches: number
  readonly rerunBatches: number
}

/** This isolate's counts, kept by the host actors and their command batches. */
export const actorCounters: { -readonly [K in keyof ActorMetrics]: number } = {
  activeHostWorkers: 0,
  appendRaces: 0,
  chainedBatches: 0,
  rerunBatches: 0,
}

let remote: ActorMetrics = { activeHostWorkers: 0, appendRaces: 0, chainedBatches: 0, rerunBatches: 0 }

/** The counts reported by this node's actor isolate, when the node is split. */
export const setRemoteActorMetrics = (metrics: ActorMetrics): void => {
  remote = metrics
}

/** This isolate's counts (an actor isolate reports these). */
export const localActorMetrics = (): ActorMetrics => ({ ...actorCounters })

/** The node's counts: this isolate's and its actor isolate's. */
export const actorMetrics = (): ActorMetrics => ({
  activeHostWorkers: actorCounters.activeHostWorkers + remote.activeHostWorkers,
  appendRaces: actorCounters.appendRaces + remote.appendRaces,
  chainedBatches: actorCounters.chainedBatches + remote.chainedBatches,
  rerunBatches: actorCounters.rerunBatches + remote.rerunBatches,
})
