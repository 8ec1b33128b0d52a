/**
 * What the actors count: host workers alive (idle hosts have none), lost append races
 * (another node took the log's next seq first), command batches committed and the commands
 * they carried (their ratio is the group commit's batch size), batches chained behind one still
 * committing, chained batches run again because the one ahead failed, and dead letters stored
 * or dropped (dead-letters.ts). A split node's actor
 * isolate reports its counts every 250 ms when they changed (node-isolates.ts); the ingress adds them to this
 * isolate's for `/metrics`.
 */

export interface ActorMetrics {
  readonly activeHostWorkers: number
  readonly appendRaces: number
  readonly committedBatches: number
  readonly committedCommands: number
  readonly chainedBatches: number
  readonly rerunBatches: number
  readonly deadLetters: number
  readonly deadLettersDropped: number
}

/** This isolate's counts, kept by the host actors and their command batches. */
export const actorCounters: { -readonly [K in keyof ActorMetrics]: number } = {
  activeHostWorkers: 0,
  appendRaces: 0,
  committedBatches: 0,
  committedCommands: 0,
  chainedBatches: 0,
  rerunBatches: 0,
  deadLetters: 0,
  deadLettersDropped: 0,
}

let remote: ActorMetrics = { ...actorCounters }

/** The counts reported by this node's actor isolate, when the node is split. */
export const setRemoteActorMetrics = (metrics: ActorMetrics): void => {
  remote = metrics
}

/** This isolate's counts (an actor isolate reports these). */
export const localActorMetrics = (): ActorMetrics => ({ ...actorCounters })

/** The node's counts: this isolate's and its actor isolate's. */
export const actorMetrics = (): ActorMetrics => {
  const sum = { ...actorCounters }
  for (const key of Object.keys(sum) as Array<keyof ActorMetrics>) sum[key] += remote[key] ?? 0
  return sum
}
