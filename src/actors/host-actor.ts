/**
 * A host actor: subscribes to `hamlet.req.<project>.<hostToken>.*` in a queue group (so a
 * fleet shares the host's load), decodes each request, runs queries concurrently and
 * commands one batch at a time through a bounded mailbox. Closing its scope unsubscribes,
 * then drains the commands already queued.
 */
import { Cause, Effect, Exit, Fiber, Queue, Schema, type Scope } from "effect"
import { Bus, type BusMessage, type BusUnavailable } from "../bus/bus.ts"
import { decodeText, encodeJson, type Reply, REQUEST_ID_HEADER, RequestEnvelope } from "../bus/envelope.ts"
import { eventSubject, hostRequestWildcard, parseRequestSubject } from "../bus/subjects.ts"
import { badInput, replyError } from "../errors.ts"
import type { LoadedProject } from "../projects/loader.ts"
import type { Sql } from "../store/database.ts"
import type { StoredEvent } from "../store/event-log.ts"
import { withHostTransaction } from "../store/transaction.ts"
import { type Command, type HostLog, processBatch } from "./command-batch.ts"
import { decodeInput, type HandlerRequest, inputError, runHandler } from "./handler-run.ts"

/** Commands taken from the mailbox per transaction at most. */
const MAX_BATCH = 256
/** Queue group shared by every node's actor for a host. */
export const HOST_QUEUE_GROUP = "hamlet"

const decodeEnvelope = Schema.decodeUnknownExit(RequestEnvelope)

const announceEvents =
  (bus: Bus["Service"], project: string, host: string) => (events: ReadonlyArray<StoredEvent>) =>
    Effect.runFork(Effect.forEach(events, (e) =>
      bus.publish(
        eventSubject(project, host, e.type),
        encodeJson({
          host: e.host,
          seq: e.seq,
          stream: e.stream,
          type: e.type,
          data: e.data,
          recordedAt: e.recordedAt.toISOString(),
        }),
      ).pipe(Effect.ignore), { discard: true }))

export const startHostActor = (
  sql: Sql,
  project: LoadedProject,
  host: string,
): Effect.Effect<void, BusUnavailable, Scope.Scope | Bus> =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const mailbox = yield* Queue.bounded<Command, Cause.Done>(project.limits.mailboxSize)
    const log: HostLog = {
      sql,
      project,
      host,
      head: undefined,
      announce: announceEvents(bus, project.name, host),
    }
    const context = yield* Effect.context<never>()
    const runFork = Effect.runForkWith(context)
    const annotate = Effect.annotateLogs({ project: project.name, host })

    const runQuery = (request: HandlerRequest, respond: (reply: Reply) => void) =>
      withHostTransaction(sql, host, (tx) => runHandler(project, host, tx, request)).pipe(
        Effect.map((outcome) => outcome.reply),
        Effect.catchCause((cause) =>
          Effect.logError("query failed", Cause.pretty(cause)).pipe(
            Effect.as<Reply>({
              ok: false,
              error: { code: "internal", message: "internal error", requestId: request.requestId },
            }),
          )
        ),
        Effect.map(respond),
        Effect.annotateLogs({ requestId: request.requestId }),
        annotate,
      )

    const onMessage = (message: BusMessage) => {
      const respond = (reply: Reply) =>
        message.respond(encodeJson(reply), requestId ? { [REQUEST_ID_HEADER]: requestId } : undefined)
      let requestId = message.headers[REQUEST_ID_HEADER]
      const address = parseRequestSubject(message.subject)
      let json: unknown
      try {
        json = JSON.parse(decodeText(message.data))
      } catch {
        return respond({
          ok: false,
          error: replyError("bad_request", "the request envelope is not valid JSON"),
        })
      }
      const envelope = decodeEnvelope(json, { errors: "all" })
      if (Exit.isFailure(envelope)) {
        const error = Cause.findErrorOption(envelope.cause)
        return respond({
          ok: false,
          error: error._tag === "Some"
            ? badInput(error.value, "the request envelope")
            : replyError("bad_request", "malformed envelope"),
        })
      }
      requestId ??= envelope.value.id
      const handler = address && project.handlers.get(address.handler)
      if (!handler) {
        return respond({
          ok: false,
          error: replyError("not_found", `project ${project.name} has no handler ${address?.handler ?? "?"}`),
        })
      }
      const input = decodeInput(handler, envelope.value.input)
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
        meta: envelope.value.meta ?? {},
        deadline: Date.now() + (handler.timeoutMs ?? project.limits.handlerTimeoutMs),
      }
      if (handler.kind === "query") return void runFork(runQuery(request, respond))
      if (!Queue.offerUnsafe(mailbox, { ...request, respond })) {
        respond({ ok: false, error: replyError("overloaded", `host ${host} is busy; retry shortly`) })
      }
    }

    const worker = Queue.takeBetween(mailbox, 1, MAX_BATCH).pipe(
      Effect.flatMap((batch) =>
        processBatch(log, batch).pipe(
          // a defect here is a bug; answer the batch so no caller hangs, and keep serving
          Effect.catchCause((cause) =>
            Effect.logError("command batch crashed", Cause.pretty(cause)).pipe(
              Effect.andThen(Effect.sync(() => {
                log.head = undefined
                for (const c of batch) {
                  c.respond({
                    ok: false,
                    error: { code: "internal", message: "internal error", requestId: c.requestId },
                  })
                }
              })),
            )
          ),
        )
      ),
      Effect.forever,
      Effect.catchIf(Cause.isDone, () => Effect.void),
      annotate,
    )
    const workerFiber = yield* Effect.forkScoped(worker)
    // drain on close: stop accepting, let queued commands commit (bounded wait)
    yield* Effect.addFinalizer(() =>
      Queue.end(mailbox).pipe(
        Effect.andThen(Fiber.join(workerFiber).pipe(Effect.timeout(10_000), Effect.ignore)),
      )
    )
    yield* bus.subscribe(hostRequestWildcard(project.name, host), onMessage, { queue: HOST_QUEUE_GROUP })
  })
