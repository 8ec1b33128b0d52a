/**
 * In-process Bus with NATS semantics (`*`/`>` wildcards, queue groups, request/reply, headers,
 * payload limit). Delivery is asynchronous but FIFO, so per publisher and subscription order holds.
 */
import { Effect, Layer } from "effect"
import {
  Bus,
  type BusHeaders,
  type BusMessage,
  BusNoResponders,
  BusPayloadTooLarge,
  type BusReply,
  BusTimeout,
} from "./bus.ts"

export interface MemoryBusOptions {
  /** Largest payload accepted, in bytes; 1 MiB by default, like nats-server. */
  readonly maxPayload?: number
}

interface _Subscription {
  readonly subject: string
  readonly tokens: ReadonlyArray<string>
  readonly queue: string | undefined
  readonly onMessage: (message: BusMessage) => void
  isActive: boolean
}

/** Members of one queue group interested in one subject; `turn` drives the round-robin. */
interface _Group {
  readonly members: ReadonlyArray<_Subscription>
  turn: number
}

/** Who gets a message on one subject: every plain subscriber, one member per queue group. */
interface _Interest {
  readonly plain: ReadonlyArray<_Subscription>
  readonly groups: ReadonlyArray<_Group>
}

const EMPTY_HEADERS: BusHeaders = Object.freeze({})
const INTEREST_CACHE_LIMIT = 4096
let _busCount = 0

const _isWildcard = (subject: string): boolean => subject.includes("*") || subject.includes(">")

/** NATS matching: `*` is exactly one token, a trailing `>` is one or more tokens. */
const _matches = (pattern: ReadonlyArray<string>, tokens: ReadonlyArray<string>): boolean => {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]
    if (p === ">") return tokens.length > i
    if (i >= tokens.length) return false
    if (p !== "*" && p !== tokens[i]) return false
  }
  return pattern.length === tokens.length
}

export const makeMemoryBusWith = (options: MemoryBusOptions = {}): Effect.Effect<Bus["Service"]> =>
  Effect.sync(() => {
    const maxPayload = options.maxPayload ?? 1024 * 1024
    const literal = new Map<string, Array<_Subscription>>()
    const wildcard: Array<_Subscription> = []
    // Resolved interest per subject; cleared on every (un)subscribe, so the hot path is a map hit.
    const interestCache = new Map<string, _Interest>()
    const inboxPrefix = `_INBOX.mem${++_busCount}.`
    let inboxCount = 0
    const pendingReplies = new Map<string, (reply: BusReply) => void>()

    // One FIFO for every delivery: publish order is delivery order, for all subscriptions at once.
    const deliveries: Array<() => void> = []
    let isDraining = false
    const drain = () => {
      // Index loop (not shift) keeps a burst of N deliveries O(N).
      for (let i = 0; i < deliveries.length; i++) {
        try {
          deliveries[i]()
        } catch (error) {
          console.error("bus subscriber threw (callbacks must not throw)", error)
        }
      }
      deliveries.length = 0
      isDraining = false
    }
    const enqueue = (delivery: () => void) => {
      deliveries.push(delivery)
      if (!isDraining) {
        isDraining = true
        queueMicrotask(drain)
      }
    }

    // Reply inboxes are single-use subjects: resolving them uncached keeps them from evicting hot ones.
    const interestIn = (subject: string, isCacheable = true): _Interest => {
      const cached = interestCache.get(subject)
      if (cached) return cached
      const tokens = subject.split(".")
      const candidates = (literal.get(subject) ?? []).concat(
        wildcard.filter((s) => _matches(s.tokens, tokens)),
      )
      const plain: Array<_Subscription> = []
      const byQueue = new Map<string, Array<_Subscription>>()
      for (const s of candidates) {
        if (s.queue === undefined) plain.push(s)
        else byQueue.set(s.queue, [...(byQueue.get(s.queue) ?? []), s])
      }
      const groups = [...byQueue.values()].map((members) => ({ members, turn: 0 }))
      const interest = { plain, groups }
      if (!isCacheable) return interest
      if (interestCache.size >= INTEREST_CACHE_LIMIT) interestCache.clear()
      interestCache.set(subject, interest)
      return interest
    }

    const hasInterest = (subject: string): boolean => {
      const interest = interestIn(subject)
      return interest.plain.length > 0 || interest.groups.length > 0
    }

    const deliver = (subject: string, data: Uint8Array, headers: BusHeaders, reply: string | undefined) => {
      const isInbox = subject.startsWith(inboxPrefix)
      const waiter = isInbox ? pendingReplies.get(subject) : undefined
      if (waiter) enqueue(() => waiter({ data, headers }))
      const interest = interestIn(subject, !isInbox)
      if (interest.plain.length === 0 && interest.groups.length === 0) return
      const respond = (replyData: Uint8Array, replyHeaders?: BusHeaders) => {
        // Like a NATS client: an oversized reply is dropped and the requester times out.
        if (reply !== undefined && replyData.length <= maxPayload) {
          deliver(reply, replyData, replyHeaders ?? EMPTY_HEADERS, undefined)
        }
      }
      const message: BusMessage = { subject, data, headers, reply, respond }
      for (const s of interest.plain) enqueue(() => s.isActive && s.onMessage(message))
      for (const group of interest.groups) {
        const member = group.members[group.turn++ % group.members.length]
        enqueue(() => member.isActive && member.onMessage(message))
      }
    }

    const tooLarge = (subject: string, data: Uint8Array) =>
      new BusPayloadTooLarge({ subject, size: data.length, maxPayload })

    const publish: Bus["Service"]["publish"] = (subject, data, headers) =>
      Effect.suspend(() => {
        if (data.length > maxPayload) return Effect.fail(tooLarge(subject, data))
        deliver(subject, data, headers ?? EMPTY_HEADERS, undefined)
        return Effect.void
      })

    const subscribe: Bus["Service"]["subscribe"] = (subject, onMessage, subscribeOptions) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const subscription: _Subscription = {
            subject,
            tokens: subject.split("."),
            queue: subscribeOptions?.queue,
            onMessage,
            isActive: true,
          }
          if (_isWildcard(subject)) wildcard.push(subscription)
          else literal.set(subject, [...(literal.get(subject) ?? []), subscription])
          interestCache.clear()
          return subscription
        }),
        (subscription) =>
          Effect.sync(() => {
            subscription.isActive = false
            if (_isWildcard(subject)) wildcard.splice(wildcard.indexOf(subscription), 1)
            else {
              const rest = (literal.get(subject) ?? []).filter((s) => s !== subscription)
              if (rest.length === 0) literal.delete(subject)
              else literal.set(subject, rest)
            }
            interestCache.clear()
          }),
      ).pipe(Effect.asVoid)

    const request: Bus["Service"]["request"] = (subject, data, requestOptions) =>
      Effect.callback<BusReply, BusTimeout | BusNoResponders | BusPayloadTooLarge>((resume) => {
        if (data.length > maxPayload) return resume(Effect.fail(tooLarge(subject, data)))
        if (!hasInterest(subject)) return resume(Effect.fail(new BusNoResponders({ subject })))
        const inbox = `${inboxPrefix}${++inboxCount}`
        const timer = setTimeout(() => {
          pendingReplies.delete(inbox)
          resume(Effect.fail(new BusTimeout({ subject, timeoutMs: requestOptions.timeoutMs })))
        }, requestOptions.timeoutMs)
        pendingReplies.set(inbox, (reply) => {
          clearTimeout(timer)
          pendingReplies.delete(inbox)
          resume(Effect.succeed(reply))
        })
        deliver(subject, data, requestOptions.headers ?? EMPTY_HEADERS, inbox)
        return Effect.sync(() => {
          clearTimeout(timer)
          pendingReplies.delete(inbox)
        })
      })

    return Bus.of({
      publish,
      subscribe,
      request,
      isConnected: Effect.succeed(true),
      reconnects: Effect.succeed(0),
      maxPayload,
      flush: Effect.void,
    })
  })

/** An in-process bus with the default 1 MiB payload limit. */
export const makeMemoryBus: Effect.Effect<Bus["Service"]> = makeMemoryBusWith()

export const MemoryBusLive: Layer.Layer<Bus> = Layer.effect(Bus, makeMemoryBus)
