/**
 * The baselines Hamlet's figures are divided by, measured in the same run on the same
 * machine: a bare Deno.serve hello, a bare NATS request/reply hop, and a bare batched
 * Postgres append (group commit: flush whatever is queued whenever no commit is in flight).
 * As a script it is the server half of a baseline: `hello <port>` or `nats-echo <url> <subject>
 * [replyBytes]`.
 */
import { connect } from "@nats-io/transport-node"
import postgres from "postgres"
import type { Caller, Driver } from "./driver.ts"

/** A reply the size of a small Hamlet reply, so the hop carries comparable bytes. */
const ECHO_REPLY = new TextEncoder().encode(JSON.stringify({ ok: true, output: { items: [] } }))
/** Same cap as a host actor's batch. */
const MAX_BATCH = 256

/** NATS request/reply from one connection (as an ingress has), `index` callers sharing it. */
export const natsHopDriver = async (url: string, subject: string): Promise<Driver> => {
  const nc = await connect({ servers: url })
  const payload = new TextEncoder().encode(JSON.stringify({ id: "bench", input: {} }))
  const caller: Caller = {
    call: () => nc.request(subject, payload, { timeout: 5000 }).then(() => 200, () => 503),
    close: () => {},
  }
  return { connect: () => Promise.resolve(caller), close: () => nc.drain() }
}

/**
 * Appends one event-sized row per call; concurrent calls are group-committed as one
 * multi-row insert in one transaction, one transaction in flight at a time (one host).
 */
export const pgAppendDriver = async (url: string, table: string, maxConnections = 2): Promise<Driver> => {
  const sql = postgres(url, { max: maxConnections, onnotice: () => {} })
  await sql.unsafe(
    `create table if not exists ${table} (host text not null, seq bigint not null, data jsonb not null,
       hash text not null, primary key (host, seq))`,
  )
  const queue: Array<(status: number) => void> = []
  let isCommitting = false
  let hasLoggedError = false
  let seq = 0
  // a fresh host per run: runs at several client counts share the table, never a (host, seq)
  const host = `${crypto.randomUUID()}.bench.test`
  const flush = async (): Promise<void> => {
    if (isCommitting || queue.length === 0) return
    isCommitting = true
    const batch = queue.splice(0, MAX_BATCH)
    const rows = batch.map(() => ({
      host,
      seq: ++seq,
      data: sql.json({ id: crypto.randomUUID(), title: "x", tags: [] }),
      hash: "0".repeat(64),
    }))
    let status = 200
    try {
      await sql.begin((tx) => tx`insert into ${sql(table)} ${sql(rows)}`)
    } catch (e) {
      status = 500
      if (!hasLoggedError) console.error(`append failed: ${(e as Error).message}`)
      hasLoggedError = true
    }
    for (const done of batch) done(status)
    isCommitting = false
    void flush()
  }
  const caller: Caller = {
    call: () =>
      new Promise<number>((resolve) => {
        queue.push(resolve)
        void flush()
      }),
    close: () => {},
  }
  return { connect: () => Promise.resolve(caller), close: () => sql.end() }
}

const serveHello = (port: number) => {
  Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => console.log("ready") },
    () => new Response(JSON.stringify({ ok: true }), { headers: { "content-type": "application/json" } }),
  )
}

/** A reply of about `bytes` bytes shaped like a Hamlet success (a read's payload, say). */
const replyOfSize = (bytes: number): Uint8Array => {
  const shell = JSON.stringify({ ok: true, output: { items: [""] } })
  return new TextEncoder().encode(
    JSON.stringify({ ok: true, output: { items: ["x".repeat(Math.max(0, bytes - shell.length))] } }),
  )
}

const serveNatsEcho = async (url: string, subject: string, replyBytes?: number) => {
  const nc = await connect({ servers: url })
  const reply = replyBytes === undefined ? ECHO_REPLY : replyOfSize(replyBytes)
  nc.subscribe(subject, { queue: "bench", callback: (_err, msg) => void msg.respond(reply) })
  await nc.flush()
  console.log("ready")
}

if (import.meta.main) {
  const [mode, a, b, c] = Deno.args
  if (mode === "hello") serveHello(Number(a))
  else if (mode === "nats-echo") await serveNatsEcho(a, b, c === undefined ? undefined : Number(c))
  else throw new Error(`unknown baseline server mode ${mode}`)
}
