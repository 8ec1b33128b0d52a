/**
 * A host actor: subscribes to `hamlet.req.<project>.<hostToken>.*` in a queue group (so a
 * fleet shares the host's load), decodes each request, runs queries in read batches
 * (query-batch.ts) and commands in batches through a bounded mailbox (each batch chained behind
 * the previous one's commit: commit-chain.ts). The actor is built at the host's first message
 * (until then a host is its subscription), and its mailbox and worker fiber exist only while
 * the host is busy (idle hosts are passivated). Closing its scope unsubscribes, then drains the
 * commands already queued.
 */
import { Cause, type Context, Effect, Exit, Fiber, Option, Queue, type Scope } from "effect"
import { Bus, type BusMessage, type BusUnavailable } from "../bus/bus.ts"
import { announceEvents } from "../bus/event-announce.ts"
import { hostRequestWildcard, parseRequestSubject } from "../bus/subjects.ts"
import { hostBusy, hostStopping, replyError } from "../errors.ts"
import { handlerTimeoutMs, type LoadedProject } from "../projects/loader.ts"
import type { Sql } from "../store/database.ts"
import { requestDigest } from "../store/idempotency.ts"
import type { ReadLanes } from "../store/read-lanes.ts"
import type { Command, HostLog } from "./command-batch.ts"
import { actorCounters } from "./actor-metrics.ts"
import { DeadLetters } from "./dead-letters.ts"
import { makeCommitChain } from "./commit-chain.ts"
import { decodeInput, type HandlerRequest, inputError } from "./handler-run.ts"
import { answerTo, type ReplyContext } from "./host-reply.ts"
import { decodeRequest, maxRequestBytes } from "./host-request.ts"
import { coalesceKeyOf, makeQueryBatcher, type QueryBatcher } from "./query-batch.ts"

/** Commands taken from the mailbox per transaction at most. */
const MAX_BATCH = 256

interface Worker {
  readonly mailbox: Queue.Queue<Command, Cause.Done>
  fiber: Fiber.Fiber<void> | undefined
}

/** Queue group shared by every node's actor for a host. */
export const HOST_QUEUE_GROUP = "hamlet"

/**
 * Serves `host`: subscribes to its subject; the actor proper (mailbox, batchers, caches) is
 * built at the host's first message, so an idle host — most of 10,000 — is its subscription and
 * a closure. Closing the scope unsubscribes, then drains what the actor has taken.
 */
export const startHostActor = (
  sql: Sql,
  lanes: ReadLanes,
  project: LoadedProject,
  host: string,
): Effect.Effect<void, BusUnavailable, Scope.Scope | Bus | DeadLetters> =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const deadLetters = yield* DeadLetters
    const context = yield* Effect.context<never>()
    let actor: HostActor | undefined
    const actorOf = () => actor ??= makeHostActor({ sql, lanes, project, host, bus, deadLetters, context })
    // a host never asked is stopped too: a message delivered after the scope closed (an unsubscribe
    // still draining) is then refused, not run by a worker no scope owns
    yield* Effect.addFinalizer(() => Effect.suspend(() => actorOf().stop))
    yield* bus.subscribe(
      hostRequestWildcard(project.name, host),
      (message) => actorOf().onMessage(message),
      { queue: HOST_QUEUE_GROUP },
    )
  })

interface HostActorDeps {
  readonly sql: Sql
  readonly lanes: ReadLanes
  readonly project: LoadedProject
  readonly host: string
  readonly bus: Bus["Service"]
  readonly deadLetters: DeadLetters["Service"]
  readonly context: Context.Context<never>
}

interface HostActor {
  readonly onMessage: (message: BusMessage) => void
  /** Stops taking commands; answers what was taken (bounded waits). */
  readonly stop: Effect.Effect<void>
}

const makeHostActor = (
  { sql, lanes, project, host, bus, deadLetters, context }: HostActorDeps,
): HostActor => {
  let active: Worker | undefined
  let isClosing = false
  let versions: Map<string, number> | undefined
  const log: HostLog = {
    sql,
    project,
    host,
    head: undefined,
    // made at the first write: a host only ever read holds no Map
    get versions() {
      return versions ??= new Map()
    },
    announce: (events) => Effect.runFork(announceEvents(bus, project.name, events)),
    contendedUntil: 0,
  }
  const runFork = Effect.runForkWith(context)
  const annotate = Effect.annotateLogs({ project: project.name, host })

  // made at the host's first query (a host may only ever be written to)
  let queries: QueryBatcher | undefined
  const queriesOf = () =>
    queries ??= makeQueryBatcher(lanes, project, host, (effect) => void runFork(annotate(effect)))

  const replies: ReplyContext = { project, host, bus, deadLetters, runFork }

  const onMessage = (message: BusMessage) => {
    const address = parseRequestSubject(message.subject)
    const handler = address && project.handlers.get(address.handler)
    const answer = answerTo(replies, message, address?.handler, handler?.kind)
    const { respond } = answer
    if (message.data.length > maxRequestBytes(project)) {
      return respond({
        ok: false,
        error: replyError(
          "bad_request",
          `request too large: ${message.data.length} bytes, more than project ${project.name} takes (${project.limits.maxBodyBytes} bytes of input)`,
        ),
      })
    }
    const decoded = decodeRequest(message.data)
    if (!decoded.ok) return respond({ ok: false, error: decoded.error })
    const { envelope } = decoded
    const requestId = answer.requestId ??= envelope.id
    if (!handler) {
      return respond({
        ok: false,
        error: replyError("not_found", `project ${project.name} has no handler ${address?.handler ?? "?"}`),
      })
    }
    const input = decodeInput(handler, envelope.input)
    if (Exit.isFailure(input)) {
      const error = Cause.findErrorOption(input.cause)
      return respond(
        error._tag === "Some"
          ? inputError(error.value)
          : { ok: false, error: replyError("bad_request", "bad input") },
      )
    }
    const request: HandlerRequest = {
      requestId,
      handler,
      input: input.value,
      meta: envelope.meta ?? {},
      deadline: Date.now() + handlerTimeoutMs(project, handler),
    }
    if (handler.kind === "query") {
      // a host never queried before it stopped has no batcher to refuse this: refused here
      if (isClosing && !queries) return respond({ ok: false, error: hostStopping(host) })
      return queriesOf().submit({
        ...request,
        coalesceKey: coalesceKeyOf(handler, envelope.input, request.meta),
        respond,
      })
    }
    const key = request.meta.idempotencyKey
    // JSON as it arrived: the same bytes' digest on every node and every retry
    const digest = key ? requestDigest(handler.name, envelope.input ?? {}) : undefined
    if (!enqueue({ ...request, respond, request: digest })) {
      respond({ ok: false, error: isClosing ? hostStopping(host) : hostBusy(host) })
    }
  }

  /** Runs batches until the mailbox has been idle for `limits.idleMs`, then passivates. */
  const work = (state: Worker): Effect.Effect<void> => {
    const chain = makeCommitChain(log)
    return Effect.gen(function* () {
      for (;;) {
        const batch = yield* Queue.takeBetween(state.mailbox, 1, MAX_BATCH).pipe(
          Effect.timeoutOption(project.limits.idleMs),
        )
        if (Option.isNone(batch)) {
          yield* chain.settle
          // synchronous check-and-clear: no message can slip in between (one JS thread)
          const isIdle = yield* Effect.sync(() => {
            if (Queue.sizeUnsafe(state.mailbox) > 0) return false
            if (active === state) active = undefined
            return true
          })
          if (isIdle) return
          continue
        }
        yield* chain.submit(batch.value)
      }
    }).pipe(Effect.catchIf(Cause.isDone, () => chain.settle), annotate)
  }

  const activate = (): Worker => {
    const mailbox = Effect.runSync(Queue.bounded<Command, Cause.Done>(project.limits.mailboxSize))
    const state: Worker = { mailbox, fiber: undefined }
    actorCounters.activeHostWorkers++
    state.fiber = runFork(
      work(state).pipe(Effect.ensuring(Effect.sync(() => actorCounters.activeHostWorkers--))),
    )
    return state
  }

  const enqueue = (command: Command): boolean => {
    if (isClosing) return false
    active ??= activate()
    return Queue.offerUnsafe(active.mailbox, command)
  }

  // stop accepting, let queued commands commit and the queries taken finish (bounded waits)
  const stopCommands = Effect.suspend(() => {
    isClosing = true
    const state = active
    if (!state?.fiber) return Effect.void
    return Queue.end(state.mailbox).pipe(
      Effect.andThen(Fiber.join(state.fiber).pipe(Effect.timeout(10_000), Effect.ignore)),
      Effect.andThen(Fiber.interrupt(state.fiber)),
      // the store did not let the worker finish in time: whatever is still queued gets an
      // answer (retry later) instead of silence until the caller's timeout
      Effect.andThen(Queue.clear(state.mailbox).pipe(Effect.orElseSucceed(() => [] as Array<Command>))),
      Effect.flatMap((left) =>
        Effect.sync(() => {
          for (const c of left) c.respond({ ok: false, error: hostStopping(host) })
        })
      ),
    )
  })
  const stopQueries = Effect.suspend(() => {
    const taken = queries
    if (!taken) return Effect.void
    return taken.drain.pipe(
      Effect.timeout(10_000),
      Effect.ignore,
      Effect.andThen(Effect.sync(taken.abandon)),
    )
  })
  // side by side: a stalled store holds both for their whole window, once, not twice
  return { onMessage, stop: Effect.all([stopCommands, stopQueries], { concurrency: 2, discard: true }) }
}
