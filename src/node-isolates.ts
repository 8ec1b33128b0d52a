/**
 * A node split in two isolates (two V8 threads in one process): the main isolate runs the
 * HTTP ingress with routing, a worker isolate runs the host actors and the scheduler. They
 * meet on NATS, as nodes of a fleet do, so a node uses two cores instead of one JavaScript
 * thread. Measured (32 clients, one host, real services, 2 cores): GetFeed 3,356 → 4,657
 * rps, SubmitItem 1,552 → 2,352 rps. Needs NATS and Postgres (the in-process bus and the
 * embedded PGlite live in one isolate). Besides NATS, the isolates talk by messages: ready,
 * metrics and stop, and `follow-host`, by which the ingress has the actor isolate start (or
 * stop) a run-time host before routing it, so a route never points at a host without an actor.
 */
import { type ActorMetrics, setRemoteActorMetrics } from "./actors/actor-metrics.ts"
import type { ActorsFollowed, FollowInActors } from "./actors/reconcile.ts"
import type { ServerConfig } from "./server-config.ts"

/** Worker → main. */
export type IsolateReport =
  | { readonly type: "ready" }
  | { readonly type: "failed"; readonly message: string }
  | { readonly type: "metrics"; readonly metrics: ActorMetrics }
  | { readonly type: "host-followed"; readonly id: number; readonly isServed: boolean }
  | { readonly type: "stopped" }

/** Main → worker. */
export type IsolateCommand =
  | { readonly type: "stop" }
  /** Converge to hamlet_hosts for one host, then report whether its actor runs. */
  | { readonly type: "follow-host"; readonly id: number; readonly host: string }

/** How long a stopping actor isolate may take to drain its mailboxes. */
const STOP_TIMEOUT_MS = 20_000

/**
 * How long the ingress waits for the actor isolate to start (or stop) a run-time host before
 * routing it anyway: bounded, so a busy worker delays a host change, never wedges it.
 */
const FOLLOW_TIMEOUT_MS = 5_000

let follower: FollowInActors | undefined

/**
 * In the main isolate of a split node, while its actor isolate runs: asks that isolate to
 * converge one host to hamlet_hosts and resolves with what it then does (never rejects).
 * Undefined elsewhere — a node in one isolate starts its host actors itself.
 */
export const actorIsolateFollower = (): FollowInActors | undefined => follower

/** HAMLET_ISOLATES: "2" splits, "1" does not, "auto" splits with NATS, Postgres and 2+ cores. */
export const isSplit = (config: ServerConfig): boolean => {
  const hasServices = config.natsUrl !== undefined && config.databaseUrl !== undefined
  if (config.isolates === "2") {
    if (!hasServices) throw new Error("HAMLET_ISOLATES=2 needs NATS_URL and DATABASE_URL")
    return true
  }
  return config.isolates === "auto" && hasServices && navigator.hardwareConcurrency >= 2
}

export interface ActorIsolate {
  /** Fails when the isolate dies on its own (after it was ready). */
  readonly crashed: Promise<Error>
  /** Asks the isolate to drain and stop; terminates it after STOP_TIMEOUT_MS. */
  readonly stop: () => Promise<void>
}

/** Starts the actor isolate; resolves once its actors subscribe (so the ingress has responders). */
export const startActorIsolate = (): Promise<ActorIsolate> =>
  new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./actor-isolate.ts", import.meta.url).href, { type: "module" })
    let isStopping = false
    let onStopped = () => {}
    const stopped = new Promise<void>((done) => onStopped = done)
    let onCrash = (_error: Error) => {}
    const crashed = new Promise<Error>((done) => onCrash = done)
    let nextId = 0
    const pending = new Map<number, (followed: ActorsFollowed) => void>()
    const settleAll = () => {
      follower = undefined
      for (const settle of pending.values()) settle("timeout")
      pending.clear()
    }
    const follow: FollowInActors = (host) =>
      new Promise((resolve) => {
        const id = ++nextId
        const timer = setTimeout(() => settle("timeout"), FOLLOW_TIMEOUT_MS)
        const settle = (followed: ActorsFollowed) => {
          clearTimeout(timer)
          pending.delete(id)
          resolve(followed)
        }
        pending.set(id, settle)
        worker.postMessage({ type: "follow-host", id, host } satisfies IsolateCommand)
      })
    const fail = (error: Error) => {
      settleAll()
      onStopped()
      reject(error) // before ready: startup failed
      if (!isStopping) onCrash(error)
    }
    worker.onmessage = (event: MessageEvent<IsolateReport>) => {
      const report = event.data
      switch (report.type) {
        case "ready":
          follower = follow
          return resolve({
            crashed,
            stop: async () => {
              isStopping = true
              settleAll()
              worker.postMessage({ type: "stop" } satisfies IsolateCommand)
              let timer: ReturnType<typeof setTimeout> | undefined
              await Promise.race([stopped, new Promise((done) => timer = setTimeout(done, STOP_TIMEOUT_MS))])
              clearTimeout(timer)
              worker.terminate()
            },
          })
        case "failed":
          return fail(new Error(`actor isolate failed: ${report.message}`))
        case "metrics":
          return setRemoteActorMetrics(report.metrics)
        case "host-followed":
          return pending.get(report.id)?.(report.isServed ? "served" : "unserved")
        case "stopped":
          return isStopping ? onStopped() : fail(new Error("actor isolate stopped on its own"))
      }
    }
    worker.onerror = (event) => {
      event.preventDefault()
      fail(new Error(`actor isolate crashed: ${event.message}`))
    }
  })
