/**
 * Group commit for one host: every command queued while the previous commit was in flight
 * runs in one transaction (handlers, event appends, projections, idempotency records),
 * and each still gets its own reply. A failed batch is retried one command at a time; a
 * lost (host, seq) race with another node reloads the log head and retries.
 */
import { Cause, Effect } from "effect"
import type { Reply } from "../bus/envelope.ts"
import { replyError } from "../errors.ts"
import type { HostReader } from "../projects/access.ts"
import type { LoadedProject } from "../projects/loader.ts"
import { applyProjections } from "../projects/projection.ts"
import {
  COMMIT_UNKNOWN,
  type DatabaseError,
  query,
  type Sql,
  type SqlTx,
  UNIQUE_VIOLATION,
} from "../store/database.ts"
import { insertEvents, type LogHead, placeEvents, readHead, type StoredEvent } from "../store/event-log.ts"
import { makeProjectionWriter } from "../store/model-access.ts"
import { makePipeline } from "../store/pipeline.ts"
import { withHostTransaction } from "../store/transaction.ts"
import { type HandlerRequest, runHandler } from "./handler-run.ts"

export interface Command extends HandlerRequest {
  readonly respond: (reply: Reply) => void
}

export interface HostLog {
  readonly sql: Sql
  readonly project: LoadedProject
  readonly host: string
  /** Cached head of the host's log; undefined means "read it in the next transaction". */
  head: LogHead | undefined
  /** Known stream versions; cleared whenever a transaction fails (it may hold guesses). */
  readonly versions: Map<string, number>
  /** Announces committed events (after commit; a notification, not the truth). */
  readonly announce: (events: ReadonlyArray<StoredEvent>) => void
}

const MAX_CONFLICT_RETRIES = 8
/** Events per insert statement (10 parameters each; Postgres allows 65,535). */
const EVENTS_PER_INSERT = 2_000
/** Bound on the per-host stream version cache (cleared, not evicted: it refills on demand). */
const MAX_CACHED_STREAMS = 10_000

/** Replies remembered for the batch's idempotency keys: one read for the whole batch. */
const lookupIdempotent = (tx: SqlTx, host: string, commands: ReadonlyArray<Command>) => {
  const keys = [...new Set(commands.flatMap((c) => c.meta.idempotencyKey ?? []))]
  if (keys.length === 0) return Effect.succeed(new Map<string, Reply>())
  return query(() =>
    tx`select key, reply from hamlet_idempotency where host = ${host} and key = any(${keys})`
  )
    .pipe(Effect.map((rows) => new Map(rows.map((r) => [String(r.key), r.reply as Reply]))))
}

/** One transaction over `commands`; resolves to their replies and the events written. */
const commitOnce = (log: HostLog, commands: ReadonlyArray<Command>) => {
  // writes are pipelined, and so is the commit; only reads (handlers', projections',
  // versions, idempotency keys) wait
  const pipeline = makePipeline()
  return withHostTransaction(log.sql, log.host, (tx) => {
    // one writer for the batch: its plain inserts combine across commands, and handlers read
    // through it, so they see every earlier command's writes
    const writer = makeProjectionWriter(tx, log.project.name, log.host, pipeline)
    const reader: HostReader = { get: writer.get, list: writer.list, count: writer.count }
    return Effect.gen(function* () {
      let head = log.head ?? (yield* readHead(tx, log.host))
      const remembered = yield* lookupIdempotent(tx, log.host, commands)
      const replies: Array<Reply> = []
      const written: Array<StoredEvent> = []
      const unsent: Array<StoredEvent> = []
      for (const command of commands) {
        if (Date.now() > command.deadline) {
          replies.push({ ok: false, error: replyError("timeout", "the request expired while queued") })
          continue
        }
        const key = command.meta.idempotencyKey
        const previous = key ? remembered.get(key) : undefined
        if (previous) {
          replies.push(previous)
          continue
        }
        const outcome = yield* runHandler(log.project, log.host, tx, command, reader)
        if (outcome.reply.ok && outcome.events.length > 0) {
          // the batch's first events are inserted at once: that takes the log partition's lock
          // before any projection row lock, the order an audit repair takes them in (no
          // deadlock); the rest go in one statement at the end
          const stored = yield* placeEvents(
            tx,
            head,
            log.host,
            log.project.name,
            outcome.events,
            new Date(),
            { versions: log.versions },
          )
          if (written.length === 0) pipeline.send(insertEvents(tx, stored).execute())
          else unsent.push(...stored)
          yield* applyProjections(log.project.projections, stored, writer)
          head = stored[stored.length - 1]
          written.push(...stored)
        }
        // only successes are remembered: a failed command may be retried with the same key
        if (key && outcome.reply.ok) {
          remembered.set(key, outcome.reply) // a repeat later in this batch gets the same reply
          pipeline.send(
            tx`insert into hamlet_idempotency (host, key, reply) values (${log.host}, ${key}, ${
              tx.json(outcome.reply as never)
            })`.execute(),
          )
        }
        replies.push(outcome.reply)
      }
      writer.sendQueued()
      for (let i = 0; i < unsent.length; i += EVENTS_PER_INSERT) {
        pipeline.send(insertEvents(tx, unsent.slice(i, i + EVENTS_PER_INSERT)).execute())
      }
      return { replies, written, head }
    })
  }, pipeline)
}

const isConflict = (e: DatabaseError) => e.code === UNIQUE_VIOLATION

/**
 * A race another node (or a cleanup job) can win and a retry can settle: the (host, seq)
 * key of the log, or an idempotency key stored meanwhile. Other unique violations (a stream
 * that already exists, a projection's key) fail the same way every time.
 */
const isRace = (e: DatabaseError) =>
  isConflict(e) && e.constraint !== undefined &&
  ((e.constraint.startsWith("hamlet_events_") && e.constraint.endsWith("_pkey")) ||
    e.constraint === "hamlet_idempotency_pkey")

/** Commits `commands`, retrying lost races; replies to every command exactly once. */
const commitWithRetry = (
  log: HostLog,
  commands: ReadonlyArray<Command>,
): Effect.Effect<void, DatabaseError> =>
  Effect.gen(function* () {
    for (let attempt = 0;; attempt++) {
      const result = yield* Effect.result(commitOnce(log, commands))
      if (result._tag === "Success") {
        log.head = result.success.head
        if (log.versions.size > MAX_CACHED_STREAMS) log.versions.clear()
        result.success.replies.forEach((reply, i) => commands[i].respond(reply))
        if (result.success.written.length > 0) log.announce(result.success.written)
        return
      }
      log.head = undefined
      log.versions.clear()
      if (!isRace(result.failure) || attempt >= MAX_CONFLICT_RETRIES) {
        return yield* Effect.fail(result.failure)
      }
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
          error: { code: "internal", message: "internal error", requestId: c.requestId },
        })
      }
    })),
  )

/**
 * Processes one batch taken from a host's mailbox. Never fails: database trouble becomes
 * `internal` (or `conflict`) replies after the batch was retried command by command — except
 * when the commit's outcome is unknown: then nothing is run again (it may have landed). A
 * defect is retried command by command too, so only the command that causes it suffers.
 */
export const processBatch = (log: HostLog, commands: ReadonlyArray<Command>): Effect.Effect<void> =>
  commitWithRetry(log, commands).pipe(
    Effect.catch((error) =>
      commands.length === 1 || error.code === COMMIT_UNKNOWN
        ? Effect.logError("command failed in the store", { host: log.host, error: error.message }).pipe(
          Effect.andThen(Effect.sync(() => {
            for (const command of commands) {
              command.respond({
                ok: false,
                error: isConflict(error)
                  ? replyError(
                    "conflict",
                    "the write conflicts with the log (a concurrent write, or a stream that exists)",
                  )
                  : { code: "internal", message: "internal error", requestId: command.requestId },
              })
            }
          })),
        )
        : Effect.forEach(commands, (c) => processBatch(log, [c]), { discard: true })
    ),
    Effect.catchCause((cause) =>
      commands.length === 1
        ? answerCrashed(log, commands, cause)
        : Effect.forEach(commands, (c) => processBatch(log, [c]), { discard: true })
    ),
  )
