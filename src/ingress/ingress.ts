/**
 * HTTP ingress: normalise Host, route to a project, turn `/api/<Handler>` into a request
 * envelope sent by NATS request/reply to the host's actor, and map the reply to HTTP.
 * Also serves static files, `/healthz`, `/readyz` and `/metrics`. Every response carries
 * `x-request-id`.
 */
import { Context, Effect, Result, Schedule } from "effect"
import { Bus, type BusNoResponders } from "../bus/bus.ts"
import {
  decodeText,
  encodeRequest,
  OK_REPLY_HEADER,
  type Reply,
  REQUEST_ID_HEADER,
  REQUEST_ID_PATTERN,
  successOutputBytes,
} from "../bus/envelope.ts"
import { requestSubject } from "../bus/subjects.ts"
import { busFailure, internalError, replyError } from "../errors.ts"
import { actorMetrics } from "../actors/actor-metrics.ts"
import { Supervisor } from "../actors/supervisor.ts"
import { makeAdmin } from "../admin/admin.ts"
import { replyTimeoutMs } from "../projects/loader.ts"
import { Database, query } from "../store/database.ts"
import { makeCollapse } from "./collapse.ts"
import { bodyReadFailure, readBodyText } from "./body.ts"
import { hostHeaderOf, normaliseHostHeader, targetNamesOtherHost } from "./host.ts"
import { readIdempotencyKey } from "./idempotency-key.ts"
import { queryInput } from "./query-input.ts"
import { mayReadMetrics, MetricsToken, recordRequest, renderMetrics } from "./metrics.ts"
import {
  errorResponse,
  jsonResponse,
  methodNotAllowed,
  notAllowed,
  unauthorizedResponse,
} from "./responses.ts"
import { resolveRoute, type Route } from "./routing.ts"
import { isStaticFile, serveStatic } from "./static-files.ts"
import { PASCAL_NAME } from "../projects/names.ts"

/** How long a request body may pause before the request is answered 408. */
const BODY_IDLE_MS = 10_000

/**
 * The longest URL answered (Node's header limit is 16 KB; Deno's HTTP server cuts the
 * connection with a bare 400 somewhere near 100 KB, so ours must come first).
 */
const MAX_URL_LENGTH = 16 * 1024

/**
 * How long a request waits for its host's actor to subscribe (a host added or moved a moment
 * ago, an actor isolate reloading) before it is answered 503: 20 tries, 50 ms apart.
 */
const NO_RESPONDERS_RETRY = { schedule: Schedule.spaced("50 millis"), times: 20 }
const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" }

export type IngressHandler = (request: Request) => Promise<Response>

export const makeIngress: Effect.Effect<IngressHandler, never, Bus | Supervisor | Database> = Effect.gen(
  function* () {
    const bus = yield* Bus
    const supervisor = yield* Supervisor
    const { sql } = yield* Database
    const context = yield* Effect.context<never>()
    const runPromise = Effect.runPromiseWith(context)
    const admin = yield* makeAdmin
    const collapse = makeCollapse()
    const metricsToken = yield* Effect.orDie(MetricsToken)

    const isReady = () =>
      runPromise(
        Effect.all([
          bus.isConnected,
          query(() => sql`select 1`).pipe(
            Effect.timeout(2_000),
            Effect.as(true),
            Effect.orElseSucceed(() => false),
          ),
        ]).pipe(Effect.map(([a, b]) => a && b)),
      )

    const callHandler = async (route: Route, url: URL, request: Request, requestId: string) => {
      const handlerName = url.pathname.slice(5)
      const handler = route.project.handlers.get(handlerName)
      if (!PASCAL_NAME.test(handlerName) || !handler) {
        return errorResponse(
          replyError("not_found", `no handler ${handlerName} in project ${route.project.name}`),
        )
      }
      /** The input as the envelope carries it: a POST body's JSON as it arrived, checked by parsing. */
      let inputJson: string
      if (request.method === "GET" || request.method === "HEAD") {
        if (handler.kind !== "query") {
          return notAllowed(`${handlerName} is a command: use POST`, "POST")
        }
        const query = queryInput(url)
        if (!query.ok) {
          const message = "the query string is not valid UTF-8"
          return errorResponse(
            replyError("bad_request", message, query.notUtf8.map((path) => ({ path, message }))),
          )
        }
        inputJson = JSON.stringify(query.input)
      } else if (request.method === "POST") {
        let text: string
        try {
          text = await readBodyText(request, route.project.limits.maxBodyBytes, BODY_IDLE_MS)
        } catch (e) {
          return bodyReadFailure(e)
        }
        // passed on as it arrived: parsed and written again, a number like 9e20 grows 7-fold and a
        // body within the limit could make an envelope over it (the actor checks the values)
        inputJson = text.trim() || "{}"
        try {
          JSON.parse(inputJson)
        } catch (e) {
          const message = `malformed JSON: ${(e as Error).message}`
          return errorResponse(replyError("bad_request", message, [{ path: "", message }]))
        }
      } else {
        return methodNotAllowed(request.method, handler.kind === "query" ? "GET, HEAD, POST" : "POST")
      }
      // a command's Idempotency-Key: sent again after a lost answer, it runs once (queries ignore it)
      const idempotency = handler.kind === "query"
        ? { _tag: "absent" as const }
        : readIdempotencyKey(request.headers)
      if (idempotency._tag === "invalid") return errorResponse(replyError("bad_request", idempotency.message))
      const payload = encodeRequest(
        requestId,
        inputJson,
        idempotency._tag === "key" ? { idempotencyKey: idempotency.key } : undefined,
      )
      const timeoutMs = replyTimeoutMs(route.project, handler)
      const subject = requestSubject(route.project.name, route.host, handlerName)
      const isRouted = () =>
        resolveRoute(supervisor.routing(), route.host)?.project.name === route.project.name
      // the request id travels in the envelope: no NATS headers to encode and parse per request
      const ask = bus.request(subject, payload, { timeoutMs })
      // no responders: not delivered, so safe to send again, commands too; while this node routes
      // the host, its actor is (re)subscribing — a host just added or moved. Built on that failure
      // only: nothing is added to a request that was delivered
      const resend = (error: BusNoResponders) =>
        isRouted()
          ? Effect.retry(ask, {
            while: (next) => next._tag === "BusNoResponders" && isRouted(),
            ...NO_RESPONDERS_RETRY,
          })
          : Effect.fail(error)
      const send = () => runPromise(Effect.result(ask.pipe(Effect.catchTag("BusNoResponders", resend))))
      // queries carry no metadata from HTTP (an Idempotency-Key is a command's): subject and input
      // are the whole of what the actor would coalesce on
      const sent = handler.kind === "query" && handler.coalesce !== false
        ? await collapse(`${subject}\u0000${inputJson}`, send)
        : await send()
      if (Result.isFailure(sent)) {
        const error = sent.failure
        if (error._tag === "BusPayloadTooLarge") return errorResponse(busFailure(error), 413)
        if (error._tag === "BusNoResponders" && !isRouted()) {
          // removed while the request waited for its actor
          return errorResponse(replyError("not_found", `unknown host ${route.host}`))
        }
        return errorResponse(busFailure(error, {
          kind: handler.kind,
          requestId,
          idempotencyKey: idempotency._tag === "key" ? idempotency.key : undefined,
        }))
      }
      const reply = sent.success
      if (reply.headers[OK_REPLY_HEADER] === "ok") {
        // a Hamlet actor's success: pass the output's JSON through without re-encoding it
        return new Response(successOutputBytes(reply.data), { status: 200, headers: JSON_HEADERS })
      }
      const outcome = JSON.parse(decodeText(reply.data)) as Reply
      if (outcome.ok) return jsonResponse(200, outcome.output)
      // a collapsed caller's error names its own request, not the one that carried it; for a failure
      // the caller is asked to quote, the log links its id to the one the actor logged
      const { error } = outcome
      if (error.requestId === undefined) return errorResponse(error)
      if (error.requestId !== requestId && error.code === "internal") {
        void runPromise(Effect.logWarning("query answered by a collapsed request", {
          requestId,
          carriedBy: error.requestId,
        }))
      }
      return errorResponse({ ...error, requestId })
    }

    const route = async (request: Request, requestId: string): Promise<[Response, string]> => {
      if (request.url.length > MAX_URL_LENGTH) {
        const message = `the URL is longer than ${MAX_URL_LENGTH} characters: send the input as a POST body`
        return [errorResponse(replyError("bad_request", message), 414), "-"]
      }
      // Deno builds request.url from the Host header: a bad one ("host:port") makes it unparsable
      const url = URL.parse(request.url)
      if (!url) {
        return [errorResponse(replyError("bad_request", "the Host header is not a valid hostname")), "-"]
      }
      if (url.pathname === "/healthz") return [jsonResponse(200, { ok: true }), "-"]
      if (url.pathname === "/readyz") {
        const ready = await isReady()
        return [jsonResponse(ready ? 200 : 503, { ready }), "-"]
      }
      if (url.pathname === "/metrics") {
        if (!mayReadMetrics(metricsToken, request.headers.get("authorization"))) {
          const message = "the metrics token is required (Authorization: Bearer <token>)"
          return [unauthorizedResponse(message, "hamlet-metrics"), "-"]
        }
        const table = supervisor.routing()
        const actors = actorMetrics()
        return [
          new Response(
            renderMetrics({
              hamlet_hosts: table.routes.size,
              hamlet_projects: table.projects.size,
              hamlet_active_host_workers: actors.activeHostWorkers,
            }, {
              hamlet_append_races_total: actors.appendRaces,
              hamlet_command_batches_total: actors.committedBatches,
              hamlet_batched_commands_total: actors.committedCommands,
              hamlet_chained_batches_total: actors.chainedBatches,
              hamlet_rerun_batches_total: actors.rerunBatches,
              hamlet_dead_letters_total: actors.deadLetters,
              hamlet_dead_letters_dropped_total: actors.deadLettersDropped,
            }),
            {
              headers: { "content-type": "text/plain; version=0.0.4" },
            },
          ),
          "-",
        ]
      }
      // the admin API is addressed by path (/admin/hosts/<host>/…), not by the Host header
      if (url.pathname.startsWith("/admin/")) return [await admin(request, url), "-"]
      const hostHeader = hostHeaderOf(request, url)
      const host = normaliseHostHeader(hostHeader)
      if (!host) {
        return [errorResponse(replyError("bad_request", "the Host header is not a valid hostname")), "-"]
      }
      if (targetNamesOtherHost(url, hostHeader!, host)) {
        const message = "the request target names another host than the Host header"
        return [errorResponse(replyError("bad_request", message)), "-"]
      }
      const target = resolveRoute(supervisor.routing(), host)
      if (!target) return [errorResponse(replyError("not_found", `unknown host ${host}`)), "-"]
      const tag = (response: Response): [Response, string] => {
        if (supervisor.config().config.tenantHostHeader === true) {
          response.headers.set("x-tenant-host", target.host)
        }
        return [response, target.project.name]
      }
      if (url.pathname.startsWith("/api/")) {
        return tag(await callHandler(target, url, request, requestId))
      }
      if (target.dir) {
        if (request.method !== "GET" && request.method !== "HEAD") {
          if (await isStaticFile(target.dir, url.pathname)) {
            return tag(methodNotAllowed(request.method, "GET, HEAD", " on a static file"))
          }
        } else {
          const file = await serveStatic(target.dir, url.pathname, request.method === "HEAD")
          if (file) return tag(file)
        }
      }
      return tag(errorResponse(replyError("not_found", `no such path ${url.pathname}`)))
    }

    return async (request: Request): Promise<Response> => {
      const started = performance.now()
      const incoming = request.headers.get(REQUEST_ID_HEADER)
      const requestId = incoming && REQUEST_ID_PATTERN.test(incoming) ? incoming : crypto.randomUUID()
      let response: Response
      let project = "-"
      try {
        ;[response, project] = await route(request, requestId)
      } catch (error) {
        await runPromise(Effect.logError("ingress failure", { requestId, error: String(error) }))
        response = errorResponse(internalError(requestId))
      }
      response.headers.set(REQUEST_ID_HEADER, requestId)
      const seconds = (performance.now() - started) / 1000
      recordRequest(project, response.status, seconds)
      const path = response.status >= 500 ? URL.parse(request.url)?.pathname : undefined
      // a probe's 503 while not ready is its answer, not a failure worth a line per poll
      if (response.status >= 500 && path !== "/readyz") {
        void runPromise(Effect.logWarning("request failed", {
          requestId,
          project,
          host: request.headers.get("host"),
          path,
          status: response.status,
          ms: Math.round(seconds * 1000),
        }))
      }
      return response
    }
  },
)

/** The HTTP server as a scoped resource: started on acquire, shut down (gracefully) on release. */
export class HttpServer
  extends Context.Service<HttpServer, { readonly port: number }>()("hamlet/HttpServer") {}
