/**
 * Group reads for one host: queries that arrive while a batch of the host's queries runs
 * wait, and the next batch takes all of them. Within it, identical requests (same handler,
 * raw input and metadata) run once and share the reply — request coalescing. Every reply
 * still comes from statements sent after its request arrived, so a read never misses a write
 * committed before it was sent. Statements go out on the node's read lanes
 * (store/read-lanes.ts), each in its own read-only transaction, so a failing query fails its
 * group alone. A slow batch does not hold the host's reads up: once the newest batch has
 * run for `SLOW_READ_MS`, waiting queries start another (up to `MAX_READ_BATCHES`).
 *
 * Measured (32 clients on one host's GetFeed, real services, batches on reserved
 * connections): one batch at a time 4,969 rps, two 3,420–4,060, eight 1,962 — concurrent
 * batches repeat the same query instead of sharing it, and Postgres' CPU doubles.
 *
 * Queries waiting or running are bounded by the project's `mailboxSize`, as commands are:
 * past it a query is answered `overloaded` at once (a flood on one host must not pile up
 * memory and time out every other tenant's reads). `drain` stops taking queries and waits
 * for the ones taken, so a node that stops answers the reads it accepted.
 */
import { Cause, Effect } from "effect"
import type { Reply } from "../bus/envelope.ts"
import { hostBusy, hostStopping, internalError, replyError, storeFailure } from "../errors.ts"
import type { LoadedProject } from "../projects/loader.ts"
import { makeHostReader, readsOnLanes } from "../store/model-access.ts"
import { READ_TIMED_OUT, type ReadLanes } from "../store/read-lanes.ts"
import { type HandlerRequest, runHandler } from "./handler-run.ts"

/** Batches one host may run at once (the extra ones only behind slow ones). */
export const MAX_READ_BATCHES = 4
/** A batch running this long lets waiting queries start another. */
export const SLOW_READ_MS = 20

export interface Query extends HandlerRequest {
  /** Requests with equal keys may share one run (undefined: never shared). */
  readonly coalesceKey: string | undefined
  readonly respond: (reply: Reply) => void
}

/** The key under which a query may share its run with identical concurrent ones. */
export const coalesceKeyOf = (
  handler: HandlerRequest["handler"],
  rawInput: unknown,
  meta: HandlerRequest["meta"],
): string | undefined =>
  handler.coalesce === false
    ? undefined
    : `${handler.name}\u0000${JSON.stringify(rawInput ?? {})}\u0000${JSON.stringify(meta)}`

/** Postgres cancelled a read at its statement_timeout (read-lanes.ts): the caller gets a timeout. */
const isReadTimeout = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((r) =>
    Cause.isFailReason(r) && (r.error as { readonly code?: unknown } | undefined)?.code === READ_TIMED_OUT
  )

/** The leader's reply for a follower: errors carry the follower's own request id. */
const replyFor = (reply: Reply, query: Query): Reply =>
  !reply.ok && reply.error.requestId !== undefined
    ? { ok: false, error: { ...reply.error, requestId: query.requestId } }
    : reply

const groupByKey = (queries: ReadonlyArray<Query>): Array<Array<Query>> => {
  const groups = new Map<string | Query, Array<Query>>()
  for (const query of queries) {
    const key = query.coalesceKey ?? query
    const group = groups.get(key)
    if (group) group.push(query)
    else groups.set(key, [query])
  }
  return [...groups.values()]
}

export interface QueryBatcher {
  readonly submit: (query: Query) => void
  /** Refuses new queries and completes once every query taken has been answered. */
  readonly drain: Effect.Effect<void>
  /** After a drain that ran out of time: answers the queries still waiting (retry later). */
  readonly abandon: () => void
}

/** `run` forks an effect on the host actor's runtime. */
export const makeQueryBatcher = (
  lanes: ReadLanes,
  project: LoadedProject,
  host: string,
  run: (effect: Effect.Effect<void>) => void,
): QueryBatcher => {
  const waiting: Array<Query> = []
  /** Queries in batches that are running. */
  let running = 0
  let isClosing = false
  let onIdle: (() => void) | undefined

  const answer = (group: ReadonlyArray<Query>, reply: Reply) => {
    group[0].respond(reply)
    for (let i = 1; i < group.length; i++) group[i].respond(replyFor(reply, group[i]))
  }

  /**
   * Runs one group's handler once and answers the whole group; a failure fails that group alone.
   * Its reads end at the leader's deadline (the group shares its handler's time limit).
   */
  const runGroup = (group: ReadonlyArray<Query>): Effect.Effect<void> =>
    runHandler(
      project,
      host,
      makeHostReader(readsOnLanes(lanes, host, group[0].deadline), project.name, host),
      group[0],
    ).pipe(
      Effect.matchCauseEffect({
        onSuccess: ({ reply }) => Effect.sync(() => answer(group, reply)),
        onFailure: (cause) => {
          const isTimeout = isReadTimeout(cause)
          const failure = Cause.findErrorOption(cause)
          const answerAll = Effect.sync(() => {
            for (const q of group) {
              q.respond({
                ok: false,
                error: isTimeout
                  ? replyError("timeout", "a read ran past its time limit")
                  : failure._tag === "Some"
                  ? storeFailure(failure.value, { kind: "query", requestId: q.requestId })
                  : internalError(q.requestId),
              })
            }
          })
          return isTimeout
            ? answerAll
            : Effect.andThen(Effect.logError("query failed", Cause.pretty(cause)), answerAll)
        },
      }),
    )

  const runBatch = (queued: ReadonlyArray<Query>): Effect.Effect<void> => {
    const now = Date.now()
    const batch = queued.filter((q) => {
      if (now <= q.deadline) return true
      q.respond({ ok: false, error: replyError("timeout", "the request expired while queued") })
      return false
    })
    if (batch.length === 0) return Effect.void
    return Effect.forEach(groupByKey(batch), runGroup, { concurrency: "unbounded", discard: true }).pipe(
      Effect.annotateLogs({ requestId: batch[0].requestId }),
    )
  }

  /** Start times of the batches still running, oldest first. */
  const started: Array<number> = []
  let recheck: ReturnType<typeof setTimeout> | undefined

  const startNext = (): void => {
    if (waiting.length === 0 || started.length >= MAX_READ_BATCHES) return
    const now = performance.now()
    const newest = started.at(-1)
    if (newest !== undefined && now - newest < SLOW_READ_MS) {
      // behind a batch that may still finish soon: look again when it would count as slow
      recheck ??= setTimeout(() => {
        recheck = undefined
        startNext()
      }, newest + SLOW_READ_MS - now)
      return
    }
    started.push(now)
    const batch = waiting.splice(0)
    running += batch.length
    run(
      runBatch(batch).pipe(Effect.ensuring(Effect.sync(() => {
        running -= batch.length
        started.splice(started.indexOf(now), 1)
        startNext()
        if (started.length === 0 && waiting.length === 0) onIdle?.()
      }))),
    )
  }

  return {
    submit: (query) => {
      if (isClosing) return query.respond({ ok: false, error: hostStopping(host) })
      if (waiting.length + running >= project.limits.mailboxSize) {
        return query.respond({ ok: false, error: hostBusy(host) })
      }
      waiting.push(query)
      startNext()
    },
    drain: Effect.callback<void>((resume) => {
      isClosing = true
      if (started.length === 0 && waiting.length === 0) return resume(Effect.void)
      onIdle = () => resume(Effect.void)
    }),
    abandon: () => {
      if (recheck !== undefined) clearTimeout(recheck)
      for (const query of waiting.splice(0)) query.respond({ ok: false, error: hostStopping(host) })
    },
  }
}
