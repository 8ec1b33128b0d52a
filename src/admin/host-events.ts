/**
 * `GET /admin/hosts/<host>/events?from=&to=&since=&until=&stream=`: the host's log as NDJSON
 * (the CLI's export rows), for a caller presenting the key of the project that owns the
 * host. A project without a key has this disabled, never open (403 to a caller holding some
 * valid key); another project's key gets 403; anyone else one 401 (authorize.ts). Read by keyset pages on the shared pool, so a
 * slow client never pins a connection.
 */
import { Effect } from "effect"
import { replyError } from "../errors.ts"
import { BadRange, parseRange } from "../audit/event-range.ts"
import { eventPages, ndjsonBody } from "../audit/export.ts"
import { query, type Sql } from "../store/database.ts"
import { GENESIS_HASH } from "../store/event-hash.ts"
import { errorResponse } from "../ingress/responses.ts"
import { authorizeHost, type HostAccessDeps } from "./authorize.ts"

export interface HostEventsDeps extends HostAccessDeps {
  readonly log: (message: string, fields: Record<string, unknown>) => void
  readonly logError: (message: string, fields: Record<string, unknown>) => void
}

const head = (sql: Sql, host: string) =>
  Effect.runPromise(
    query(() => sql`select seq, hash from hamlet_events where host = ${host} order by seq desc limit 1`),
  ).then((rows) =>
    // an empty log's head is the genesis hash, as the CLI prints it
    rows[0] ? { seq: String(rows[0].seq), hash: String(rows[0].hash) } : { seq: "0", hash: GENESIS_HASH }
  )

export const hostEvents = async (
  deps: HostEventsDeps,
  request: Request,
  url: URL,
  host: string,
): Promise<Response> => {
  const owner = await authorizeHost(deps, request, host)
  if (owner instanceof Response) return owner
  let range
  try {
    range = parseRange(Object.fromEntries(url.searchParams))
  } catch (e) {
    if (e instanceof BadRange) return errorResponse(replyError("bad_request", e.message))
    throw e
  }
  const logHead = await head(deps.sql, host)
  deps.log("admin export", { host, project: owner.name, range: url.search })
  const body = request.method === "HEAD" ? null : ndjsonBody(
    eventPages(deps.sql, host, range, { links: true }),
    (error, sentThroughSeq) =>
      deps.logError("admin export failed: the transfer was cut short", {
        host,
        sentThroughSeq,
        logHeadSeq: logHead.seq,
        error: String(error),
      }),
  )
  return new Response(body, {
    status: 200,
    headers: {
      "content-type": "application/x-ndjson; charset=utf-8",
      "content-disposition": `attachment; filename="${host}.events.ndjson"`,
      "cache-control": "no-store",
      // the head at request time: lets the auditor see whether the file reaches it
      "x-hamlet-log-head-seq": logHead.seq,
      "x-hamlet-log-head-hash": logHead.hash,
    },
  })
}
