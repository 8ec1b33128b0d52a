/**
 * Bus over a real NATS server (@nats-io/transport-node v3). Reconnects forever; while
 * disconnected, publish and request fail fast with BusUnavailable instead of buffering.
 */
import { Effect, Layer, type Scope } from "effect"
import { connectNats } from "./nats-connect.ts"
import { makeRequestMux } from "./nats-requests.ts"
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node"
import {
  Bus,
  type BusHeaders,
  type BusMessage,
  BusNoResponders,
  BusPayloadTooLarge,
  type BusReply,
  BusTimeout,
  BusUnavailable,
} from "./bus.ts"

export interface NatsBusOptions {
  /** Connection name shown by the server (`nats server report connections`). */
  readonly name?: string
  /** Pause between reconnect attempts; 250 ms by default. */
  readonly reconnectTimeWaitMs?: number
  /** How long the first connect may take; 5 s by default. */
  readonly connectTimeoutMs?: number
  /**
   * How often the client pings the server; two unanswered pings make it reconnect. 10 s by
   * default (nats.js' own 2 minutes would leave a half-open link — a partition that sends no
   * reset — unnoticed for about 4 minutes: requests time out instead of failing fast).
   */
  readonly pingIntervalMs?: number
}

const EMPTY_HEADERS: BusHeaders = Object.freeze({})
const DRAIN_TIMEOUT_MS = 2000

const _toNatsHeaders = (busHeaders: BusHeaders | undefined): MsgHdrs | undefined => {
  if (busHeaders === undefined) return undefined
  const keys = Object.keys(busHeaders)
  if (keys.length === 0) return undefined
  const result = natsHeaders()
  for (const key of keys) result.set(key, busHeaders[key])
  return result
}

const _fromNatsHeaders = (msgHeaders: MsgHdrs | undefined): BusHeaders => {
  if (msgHeaders === undefined) return EMPTY_HEADERS
  const result: Record<string, string> = {}
  for (const key of msgHeaders.keys()) result[key] = msgHeaders.get(key)
  return result
}

const _isPayloadError = (error: unknown): boolean =>
  error instanceof Error && /max_payload/.test(error.message)

/** NATS server URLs as they may be logged: a user and password (`nats://user:pass@host`) are dropped. */
export const withoutCredentials = (servers: string): string =>
  servers.replace(/(^\s*|,\s*|\/\/)[^/@,\s]*@/g, "$1")

/** Drain (flushes pending work) but never hang shutdown on a dead server. */
const _closeQuietly = async (nc: NatsConnection): Promise<void> => {
  if (nc.isClosed()) return
  const timer = new Promise<void>((resolve) => setTimeout(resolve, DRAIN_TIMEOUT_MS).unref?.())
  await Promise.race([nc.drain().catch(() => {}), timer])
  if (!nc.isClosed()) await nc.close().catch(() => {})
}

export const makeNatsBus = (
  url: string,
  options: NatsBusOptions = {},
): Effect.Effect<Bus["Service"], BusUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const nc = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          connectNats({
            servers: url,
            name: options.name ?? "hamlet",
            maxReconnectAttempts: -1,
            reconnectTimeWait: options.reconnectTimeWaitMs ?? 250,
            timeout: options.connectTimeoutMs ?? 5000,
            pingInterval: options.pingIntervalMs ?? 10_000,
            maxPingOut: 2,
            // An async trace allocates an Error per request: too dear on the hot path.
            noAsyncTraces: true,
          }),
        catch: (error) =>
          new BusUnavailable({
            message: `cannot connect to NATS at ${withoutCredentials(url)}: ${String(error)}`,
          }),
      }),
      (nc) => Effect.promise(() => _closeQuietly(nc)),
    )
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024
    const requests = yield* Effect.acquireRelease(
      Effect.sync(() => makeRequestMux(nc)),
      (mux) => Effect.sync(() => mux.close()),
    )

    let isConnected = true
    let reconnects = 0
    // the operator learns of a lost and a restored link from the log, not only from /readyz
    const log = Effect.runForkWith(yield* Effect.context<never>())
    const server = withoutCredentials(url)
    // Fail in-flight requests at once on disconnect: their replies cannot arrive anyway.
    const onDisconnect = new Set<() => void>()
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === "reconnect") {
          isConnected = true
          reconnects++
          log(Effect.logInfo("NATS connection restored", { server }))
        } else if (status.type === "disconnect" || status.type === "close") {
          if (isConnected && status.type === "disconnect") {
            log(Effect.logWarning("NATS connection lost; reconnecting", { server }))
          }
          isConnected = false
          for (const fail of [...onDisconnect]) fail()
        }
      }
    })()

    const unavailable = (what: string) =>
      new BusUnavailable({ message: `NATS is ${nc.isClosed() ? "closed" : "disconnected"}; ${what} refused` })
    /** A request that went out, and whose answer the connection's failure lost. */
    const lostInFlight = (subject: string) =>
      new BusUnavailable({
        message: `NATS ${
          nc.isClosed() ? "closed" : "disconnected"
        } before request to ${subject} was answered`,
        sent: true,
      })
    const isUp = () => isConnected && !nc.isClosed() && !nc.isDraining()

    const publish: Bus["Service"]["publish"] = (subject, data, busHeaders) =>
      Effect.suspend((): Effect.Effect<void, BusPayloadTooLarge | BusUnavailable> => {
        if (!isUp()) return Effect.fail(unavailable(`publish to ${subject}`))
        if (data.length > maxPayload) {
          return Effect.fail(new BusPayloadTooLarge({ subject, size: data.length, maxPayload }))
        }
        try {
          nc.publish(subject, data, { headers: _toNatsHeaders(busHeaders) })
          return Effect.void
        } catch (error) {
          if (_isPayloadError(error)) {
            return Effect.fail(new BusPayloadTooLarge({ subject, size: data.length, maxPayload }))
          }
          return Effect.fail(
            new BusUnavailable({ message: `publish to ${subject} failed: ${String(error)}` }),
          )
        }
      })

    const _toBusMessage = (msg: Msg): BusMessage => ({
      subject: msg.subject,
      data: msg.data,
      headers: _fromNatsHeaders(msg.headers),
      reply: msg.reply || undefined,
      respond: (data, replyHeaders) => {
        if (!msg.reply) return
        try {
          msg.respond(data, { headers: _toNatsHeaders(replyHeaders) })
        } catch {
          // Callbacks must not throw; an unsendable reply leaves the requester to time out.
        }
      },
    })

    const subscribe: Bus["Service"]["subscribe"] = (subject, onMessage, subscribeOptions) =>
      Effect.acquireRelease(
        Effect.try({
          try: () =>
            nc.subscribe(subject, {
              queue: subscribeOptions?.queue,
              callback: (error, msg) => {
                if (error === null) onMessage(_toBusMessage(msg))
              },
            }),
          catch: (error) =>
            new BusUnavailable({ message: `subscribe to ${subject} failed: ${String(error)}` }),
        }),
        // drain, not unsubscribe: messages the server routed here before it saw the UNSUB are
        // still delivered, so a request in flight to a closing subscriber is answered, not lost
        (subscription) =>
          nc.isClosed() || !isUp()
            ? Effect.sync(() => !nc.isClosed() && subscription.unsubscribe())
            : Effect.promise(() => subscription.drain().catch(() => {})).pipe(
              Effect.timeout(2_000),
              Effect.ignore,
            ),
      ).pipe(Effect.asVoid)

    const request: Bus["Service"]["request"] = (subject, data, requestOptions) =>
      Effect.callback<BusReply, BusTimeout | BusNoResponders | BusPayloadTooLarge | BusUnavailable>(
        (resume) => {
          if (!isUp()) return resume(Effect.fail(unavailable(`request to ${subject}`)))
          if (data.length > maxPayload) {
            return resume(Effect.fail(new BusPayloadTooLarge({ subject, size: data.length, maxPayload })))
          }
          const { timeoutMs } = requestOptions
          let cancel = () => {}
          const failFast = () => {
            onDisconnect.delete(failFast)
            cancel()
            resume(Effect.fail(lostInFlight(subject)))
          }
          try {
            cancel = requests.request(
              subject,
              data,
              _toNatsHeaders(requestOptions.headers),
              timeoutMs,
              (outcome) => {
                onDisconnect.delete(failFast)
                switch (outcome._tag) {
                  case "reply":
                    return resume(
                      Effect.succeed({
                        data: outcome.msg.data,
                        headers: _fromNatsHeaders(outcome.msg.headers),
                      }),
                    )
                  case "timeout":
                    return resume(Effect.fail(new BusTimeout({ subject, timeoutMs })))
                  case "noResponders":
                    return resume(Effect.fail(new BusNoResponders({ subject })))
                  case "closed":
                    return resume(Effect.fail(lostInFlight(subject)))
                }
              },
            )
          } catch (error) {
            return resume(Effect.fail(
              _isPayloadError(error)
                ? new BusPayloadTooLarge({ subject, size: data.length, maxPayload })
                : new BusUnavailable({ message: `request to ${subject} failed: ${String(error)}` }),
            ))
          }
          onDisconnect.add(failFast)
          return Effect.sync(() => {
            onDisconnect.delete(failFast)
            cancel()
          })
        },
      )

    const flush = Effect.suspend(() =>
      isUp()
        ? Effect.tryPromise({
          try: () => nc.flush(),
          catch: (error) => new BusUnavailable({ message: `flush failed: ${String(error)}` }),
        })
        : Effect.fail(unavailable("flush"))
    )

    return Bus.of({
      publish,
      subscribe,
      request,
      isConnected: Effect.sync(isUp),
      reconnects: Effect.sync(() => reconnects),
      maxPayload,
      flush,
    })
  })

export const NatsBusLive = (url: string, options?: NatsBusOptions): Layer.Layer<Bus, BusUnavailable> =>
  Layer.effect(Bus, makeNatsBus(url, options))
