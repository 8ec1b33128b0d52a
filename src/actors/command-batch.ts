/**
 * Group commit for one host: every command queued while the previous commit was in flight
 * runs in one transaction (handlers, event appends, projections, idempotency records),
 * and each still gets its own reply. A failed batch is retried one command at a time; a
 * lost (host, seq) race with another node reloads the log head and retries.
 *
 * A batch may be chained behind one whose COMMIT is still unanswered (commit-chain.ts): it
 * runs its handlers and places its events after that batch's head meanwhile. It holds its
 * writes until the batch ahead has its own writes answered, all successfully (that batch then
 * holds every row lock it will take, so these wait for it in Postgres, never the other way
 * round; a failed one will roll back and retry, and these are never sent), and its reads and
 * COMMIT until that batch has committed. If the batch before it did not commit, it
 * rolls back and runs again once that batch has settled.
 */
import { Cause, Deferred, Effect, Exit } from "effect"
import type { Reply } from "../bus/envelope.ts"
import { hostStopping, internalError, possiblyApplied, replyError, storeFailure } from "../errors.ts"
import type { HostReader } from "../projects/access.ts"
import type { LoadedProject } from "../projects/loader.ts"
import { applyProjections } from "../projects/projection.ts"
import { COMMIT_UNKNOWN, type DatabaseError, type Sql, UNIQUE_VIOLATION } from "../store/database.ts"
import {
  insertEvents,
  isSeqRace,
  type LogHead,
  placeEvents,
  readHead,
  type StoredEvent,
} from "../store/event-log.ts"
import { insertIdempotentReplies } from "../store/idempotency.ts"
import { makeProjectionWriter } from "../store/model-access.ts"
import { makePipeline } from "../store/pipeline.ts"
import { withHostTransaction } from "../store/transaction.ts"
import { actorCounters } from "./actor-metrics.ts"
import { rememberedReplies, replayed } from "./batch-idempotency.ts"
import { type Base, baseAfter, type Chaining, type Signals } from "./batch-chaining.ts"
import { type HandlerRequest, runHandler } from "./handler-run.ts"

export interface Command extends HandlerRequest {
  /** Answers the caller; only the first answer counts. */
  readonly respond: (reply: Reply) => void
  /**
   * With an idempotency key: `requestDigest` of the handler and the input as it arrived (not as
   * decoded: a decoding default or a bigint would make a retry differ, or the digest throw).
   */
  readonly request?: string
}

export interface HostLog {
  readonly sql: Sql
  readonly project: LoadedProject
  readonly host: string
  /** Cached head of the host's log; undefined means "read it in the next transaction". */
  head: LogHead | undefined
  /** Committed stream versions (batches place theirs in a VersionLayer above); cleared on failure. */
  readonly versions: Map<string, number>
  /** Announces committed events (after commit; a notification, not the truth). */
  readonly announce: (events: ReadonlyArray<StoredEvent>) => void
  /**
   * Until then (epoch ms), another node writes this host too: batches take the host's write
   * lock first, read the head after it and are not chained, so the nodes take turns instead
   * of racing for the log's next seq. Set by a lost race, kept while the head moves under us.
   */
  contendedUntil: number
}

/** How long a host stays contended after the last sign of another node writing it. */
const CONTENDED_MS = 5_000

/** Whether another node was seen writing the host lately. */
export const isContended = (log: HostLog): boolean => Date.now() < log.contendedUntil

/** Another node was seen writing the host (a lost race, a head moved under us). */
const markContended = (log: HostLog) => {
  log.contendedUntil = Date.now() + CONTENDED_MS
}

const MAX_CONFLICT_RETRIES = 8
/** Bound on the per-host stream version cache (cleared, not evicted: it refills on demand). */
const MAX_CACHED_STREAMS = 10_000

interface Outcome {
  readonly replies: ReadonlyArray<Reply>
  readonly written: ReadonlyArray<StoredEvent>
  readonly head: LogHead
}

/** One transaction over `commands`; resolves to their replies and the events written. */
const commitOnce = (
  log: HostLog,
  commands: ReadonlyArray<Command>,
  base: Base,
  onCommitSent?: (outcome: Outcome, writesSucceeded: Promise<boolean>) => void,
) => {
  // writes are pipelined, and so is the commit; only reads (handlers', projections',
  // versions, idempotency keys) wait. Chained, writes are held (see the top of this file)
  const pipeline = makePipeline({ held: base.previousWritesSucceeded !== undefined })
  const { versions } = base
  // events placed but not sent; held, they go out as one insert ahead of everything else
  const unsent: Array<StoredEvent> = []
  let isFirstInsertSent = false
  let release = () => pipeline.release()
  const gate = Effect.andThen(base.gate, Effect.sync(() => release()))
  let isBodyDone = false
  // chained, a batch is placed after the one ahead of it on this node (not after a head read now)
  const isLocked = isContended(log) && base.previousWritesSucceeded === undefined
  return withHostTransaction(log.sql, log.host, (tx) => {
    release = () => {
      if (!pipeline.isHeld()) return
      if (unsent.length > 0) isFirstInsertSent = true
      pipeline.release(unsent.length > 0 ? insertEvents(tx, unsent.splice(0)) : undefined)
    }
    // once the batch ahead holds its locks, writes go out while it commits (never after this
    // transaction ended: its connection may belong to someone else by then)
    void base.previousWritesSucceeded?.then((ok) => ok && !isBodyDone && release())
    // one writer for the batch: its plain inserts combine across commands, and handlers read
    // through it, so they see every earlier command's writes
    const writer = makeProjectionWriter(tx, log.project.name, log.host, pipeline)
    // chained, reads wait for the batch ahead to commit
    const gated: typeof writer = base.previousWritesSucceeded
      ? {
        ...writer,
        get: (model, id, options) => Effect.andThen(gate, writer.get(model, id, options)),
        list: (model, options) => Effect.andThen(gate, writer.list(model, options)),
        count: (model, where) => Effect.andThen(gate, writer.count(model, where)),
      }
      : writer
    const reader: HostReader = { get: gated.get, list: gated.list, count: gated.count }
    return Effect.gen(function* () {
      // locked, the head is read after every other node's writes
      let head: LogHead = (isLocked ? undefined : base.head) ?? (yield* readHead(tx, log.host))
      if (isLocked && log.head !== undefined && log.head.seq !== head.seq) {
        // another node wrote since our last commit: its streams' versions are not ours to guess
        log.versions.clear()
        markContended(log)
      }
      const remembered = yield* rememberedReplies(tx, log.host, commands, gate)
      const replies: Array<Reply> = []
      const written: Array<StoredEvent> = []
      const keysToStore: Array<string> = []
      for (const command of commands) {
        if (Date.now() > command.deadline) {
          replies.push({ ok: false, error: replyError("timeout", "the request expired while queued") })
          continue
        }
        const key = command.meta.idempotencyKey
        const previous = key ? remembered.get(key) : undefined
        const request = key ? command.request ?? null : null
        if (previous) {
          replies.push(replayed(previous, request, key!))
          continue
        }
        const outcome = yield* runHandler(log.project, log.host, reader, command)
        if (outcome.reply.ok && outcome.events.length > 0) {
          // the batch's first events are inserted first: that takes the log partition's lock
          // before any projection row lock, the order an audit repair takes them in (no
          // deadlock); the rest go in one statement at the end
          const stored = yield* placeEvents(
            tx,
            head,
            log.host,
            log.project.name,
            outcome.events,
            new Date(),
            { versions, beforeRead: gate },
          )
          if (!isFirstInsertSent && !pipeline.isHeld()) {
            isFirstInsertSent = true
            pipeline.send(insertEvents(tx, stored))
          } else unsent.push(...stored)
          yield* applyProjections(log.project.projections, stored, gated)
          head = stored[stored.length - 1]
          written.push(...stored)
        }
        // only successes are remembered: a failed command may be retried with the same key
        if (key && outcome.reply.ok) {
          remembered.set(key, { reply: outcome.reply, request }) // a repeat later in this batch gets it too
          keysToStore.push(key)
        }
        replies.push(outcome.reply)
      }
      writer.sendQueued()
      if (keysToStore.length > 0) {
        pipeline.send(insertIdempotentReplies(tx, log.host, keysToStore, remembered))
      }
      // held, the gate before COMMIT sends them, ahead of the rest
      if (unsent.length > 0 && !pipeline.isHeld()) pipeline.send(insertEvents(tx, unsent.splice(0)))
      return { replies, written, head } satisfies Outcome
    }).pipe(Effect.ensuring(Effect.sync(() => isBodyDone = true)))
  }, {
    pipeline,
    // the writes go out once the batch ahead has its writes answered; COMMIT once it committed
    beforeCommit: base.previousWritesSucceeded
      ? Effect.promise(() => base.previousWritesSucceeded!).pipe(
        Effect.flatMap((ok) => ok ? Effect.sync(() => release()) : Effect.void),
        Effect.andThen(gate),
      )
      : gate,
    onCommitSent: onCommitSent && ((outcome) => onCommitSent(outcome, pipeline.succeeded())),
    lockHost: isLocked,
    // the batch's handlers are done by its latest deadline: the transaction's bound follows it
    deadline: Math.max(...commands.map((c) => c.deadline)),
  })
}

/**
 * A race another node (or a cleanup job) can win and a retry can settle: the (host, seq)
 * key of the log, or an idempotency key stored meanwhile. Other unique violations (a stream
 * that already exists, a projection's key) fail the same way every time.
 */
const isRace = (e: DatabaseError) =>
  isSeqRace(e) || (e.code === UNIQUE_VIOLATION && e.constraint === "hamlet_idempotency_pkey")

/**
 * Commits `commands`, retrying lost races; replies to every command exactly once. Chained,
 * it hands over to the next batch when its first COMMIT is sent.
 */
const commitWithRetry = (
  log: HostLog,
  commands: ReadonlyArray<Command>,
  chaining: Chaining | undefined,
  signals: Signals,
  progress: { isCommitSent: boolean },
): Effect.Effect<void, DatabaseError> =>
  Effect.gen(function* () {
    let previous = chaining?.previous
    let isHandedOff = false
    for (let attempt = 0;;) {
      const base = baseAfter(log, previous)
      let isSent = false // this attempt handed over to the next batch
      const onCommitSent = (outcome: Outcome, writesSucceeded: Promise<boolean>) => {
        progress.isCommitSent = true
        if (!chaining || isHandedOff) return
        isSent = isHandedOff = true
        Deferred.doneUnsafe(
          chaining.handoff,
          Exit.succeed({ head: outcome.head, versions: base.versions, writesSucceeded, ...signals }),
        )
      }
      const exit = yield* Effect.exit(commitOnce(log, commands, base, onCommitSent))
      if (Exit.isSuccess(exit)) {
        actorCounters.committedBatches++
        actorCounters.committedCommands += commands.length
        base.versions.commitInto(log.versions)
        if (log.versions.size > MAX_CACHED_STREAMS) log.versions.clear()
        log.head = exit.value.head
        if (isSent) Deferred.doneUnsafe(signals.committed, Exit.succeed(true))
        exit.value.replies.forEach((reply, i) => commands[i].respond(reply))
        if (exit.value.written.length > 0) log.announce(exit.value.written)
        return
      }
      // the batch behind this one (if this attempt handed over) runs again once this one has settled
      if (isSent) Deferred.doneUnsafe(signals.committed, Exit.succeed(false))
      if (previous) {
        // until the previous batch has settled (its retries included), the log state is its own
        yield* Deferred.await(previous.settled)
        const previousCommitted = yield* Deferred.await(previous.committed)
        previous = undefined
        if (!previousCommitted) {
          actorCounters.rerunBatches++
          continue // placed after a head that never was: run again, unchained
        }
      }
      log.head = undefined
      log.versions.clear()
      const failure = Cause.findErrorOption(exit.cause)
      if (failure._tag === "None") return yield* Effect.failCause(exit.cause) // a defect: processBatch's
      if (!isRace(failure.value) || attempt++ >= MAX_CONFLICT_RETRIES) {
        return yield* Effect.fail(failure.value)
      }
      markContended(log)
      actorCounters.appendRaces++
      yield* Effect.logDebug("append race lost; reloading head", { host: log.host, attempt })
    }
  })

/** A defect (a bug, e.g. in a projection): answer so no caller hangs, forget cached log state. */
const answerCrashed = (log: HostLog, commands: ReadonlyArray<Command>, cause: Cause.Cause<unknown>) =>
  Effect.logError("command batch crashed", Cause.pretty(cause)).pipe(
    Effect.andThen(Effect.sync(() => {
      log.head = undefined
      log.versions.clear() // the crashed transaction may have bumped versions it never wrote
      for (const c of commands) {
        c.respond({
          ok: false,
          error: internalError(c.requestId),
        })
      }
    })),
  )

/**
 * Processes one batch taken from a host's mailbox. Never fails: database trouble becomes
 * replies (errors.ts `storeFailure`: a store that is unavailable says retry) after the batch was
 * retried command by command — except when the commit's outcome is unknown: then nothing is run
 * again (it may have landed). A defect is retried command by command too, so only the command
 * that causes it suffers.
 */
export const processBatch = (
  log: HostLog,
  commands: ReadonlyArray<Command>,
  chaining?: Chaining,
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const signals: Signals = { committed: Deferred.makeUnsafe(), settled: Deferred.makeUnsafe() }
    const progress = { isCommitSent: false }
    return commitWithRetry(log, commands, chaining, signals, progress).pipe(
      Effect.catch((error) =>
        commands.length === 1 || error.code === COMMIT_UNKNOWN
          ? Effect.suspend(() => {
            const replies = commands.map((command) =>
              storeFailure(error, {
                kind: "command",
                requestId: command.requestId,
                idempotencyKey: command.meta.idempotencyKey,
              })
            )
            const fields = {
              host: log.host,
              requestIds: commands.map((c) => c.requestId),
              handlers: commands.map((c) => c.handler.name),
              error: error.message,
            }
            // a stream that already exists is the caller's 409, not the server's trouble
            const logged = replies.every((r) => r.code === "conflict")
              ? Effect.logInfo("command refused by the store", fields)
              : Effect.logError("command failed in the store", fields)
            return logged.pipe(Effect.andThen(Effect.sync(() => {
              commands.forEach((command, i) => command.respond({ ok: false, error: replies[i] }))
            })))
          })
          : Effect.suspend(() => {
            // the batch surely did not commit (its outcome is known): a stop while its commands are
            // retried one by one tells those not yet retried that nothing was written
            progress.isCommitSent = false
            return Effect.forEach(commands, (c) => processBatch(log, [c]), { discard: true })
          })
      ),
      Effect.catchCause((cause) =>
        commands.length === 1
          ? answerCrashed(log, commands, cause)
          : Effect.forEach(commands, (c) => processBatch(log, [c]), { discard: true })
      ),
      // the node is stopping and the store did not let this batch finish: no caller waits for a
      // timeout; a write whose COMMIT went out may have landed, and its caller is told so
      // (commands answered already keep their answer: a command answers once)
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          for (const c of commands) {
            c.respond({
              ok: false,
              error: progress.isCommitSent
                ? possiblyApplied("the node stopped while this write was committing", {
                  kind: "command",
                  requestId: c.requestId,
                  idempotencyKey: c.meta.idempotencyKey,
                })
                : hostStopping(log.host),
            })
          }
        })
      ),
      Effect.ensuring(Effect.sync(() => {
        // whatever happened (an interruption too), nothing chained behind this batch waits forever
        Deferred.doneUnsafe(signals.committed, Exit.succeed(false))
        Deferred.doneUnsafe(signals.settled, Exit.void)
        if (chaining) Deferred.doneUnsafe(chaining.handoff, Exit.succeed(undefined))
      })),
    )
  })
