/**
 * Seeds a host's event log fast, with a valid hash chain, for audit benchmarks: horatio
 * events (items with tags, comments, some deletions) generated in JS and inserted with
 * `unnest` arrays, 5,000 rows a statement. Continues an existing log from its head.
 *
 *   deno run -A bench/seed-events.ts --events 1000000 [--host bench.example.com]
 *     [--database-url postgres://…]   (default DATABASE_URL)
 *     [--create-db]                   create hamlet_bench_<suffix> on that server, print its URL
 *
 * Live read tables are left empty: `deno task replay --host … --rebuild` fills them.
 */
import { Effect } from "effect"
import { parseArgs } from "node:util"
import { loadProject } from "../src/projects/loader.ts"
import type { Sql } from "../src/store/database.ts"
import { eventHash } from "../src/store/event-hash.ts"
import { readHead, registerHost } from "../src/store/event-log.ts"
import { migrateCore } from "../src/store/migrations.ts"
import { makePostgresClient } from "../src/store/postgres.ts"
import { migrateProject } from "../src/store/project-schema.ts"

const BATCH = 5_000
const TAGS = Array.from({ length: 20 }, (_, i) => `tag-${i}`)

export interface SeedOptions {
  readonly host: string
  readonly events: number
  /** Called after each batch with the number of events written so far. */
  readonly onProgress?: (written: number) => void
}

/** Appends `events` horatio events to `host` (registering it and migrating horatio first). */
export const seedEvents = async (sql: Sql, options: SeedOptions): Promise<{ lastSeq: number }> => {
  const project = await Effect.runPromise(
    loadProject(new URL("../projects/horatio", import.meta.url).pathname, undefined),
  )
  await Effect.runPromise(migrateCore(sql))
  await Effect.runPromise(migrateProject(sql, project.name, project.models))
  await Effect.runPromise(registerHost(sql, project.name, options.host, "database"))
  let { seq, hash } = await Effect.runPromise(readHead(sql, options.host))
  const versions = new Map<string, number>()
  const live: Array<string> = []
  const start = Date.now() - options.events // one event per ms, ending about now
  const target = seq + options.events
  while (seq < target) {
    const cols = {
      seq: [] as Array<number>,
      stream: [] as Array<string>,
      version: [] as Array<number>,
      type: [] as Array<string>,
      data: [] as Array<string>,
      meta: [] as Array<string>,
      recorded_at: [] as Array<string>,
      hash: [] as Array<string>,
    }
    for (let i = 0; i < BATCH && seq < target; i++) {
      seq++
      const roll = seq % 10
      let type: string
      let data: Record<string, unknown>
      if (roll < 6 || live.length === 0) {
        const id = `i${seq}`
        live.push(id)
        type = "ItemSubmitted"
        data = { id, title: `item ${seq}`, tags: roll < 3 ? [TAGS[seq % 20]] : [] }
      } else if (roll < 9) {
        const itemId = live[(seq * 7919) % live.length]
        type = "CommentSubmitted"
        data = { id: `c${seq}`, itemId, text: `comment ${seq}`, author: `guest-${seq % 100}` }
      } else {
        type = "ItemDeleted"
        data = { id: live[(seq * 104729) % live.length] }
      }
      const itemId = String(data.itemId ?? data.id)
      const stream = `item-${itemId}`
      const version = (versions.get(stream) ?? 0) + 1
      versions.set(stream, version)
      const meta = { requestId: `seed-${seq}`, handler: "Seed" }
      const recordedAt = new Date(start + seq).toISOString()
      hash = eventHash(hash, {
        host: options.host,
        seq,
        project: project.name,
        stream,
        version,
        type,
        data,
        meta,
        recordedAt,
      })
      cols.seq.push(seq)
      cols.stream.push(stream)
      cols.version.push(version)
      cols.type.push(type)
      cols.data.push(JSON.stringify(data))
      cols.meta.push(JSON.stringify(meta))
      cols.recorded_at.push(recordedAt)
      cols.hash.push(hash)
    }
    await sql`insert into hamlet_events (host, seq, project, stream, version, type, data, meta, recorded_at, hash)
      select ${options.host}, s, ${project.name}, st, v, t, d::jsonb, m::jsonb, r::timestamptz, h
      from unnest(${cols.seq}::int8[], ${cols.stream}::text[], ${cols.version}::int4[], ${cols.type}::text[],
                  ${cols.data}::text[], ${cols.meta}::text[], ${cols.recorded_at}::text[], ${cols.hash}::text[])
        as u(s, st, v, t, d, m, r, h)`
    options.onProgress?.(seq)
  }
  return { lastSeq: seq }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "bench.example.com" },
      events: { type: "string", default: "1000000" },
      "database-url": { type: "string" },
      "create-db": { type: "boolean", default: false },
    },
  })
  let url = values["database-url"] ?? Deno.env.get("DATABASE_URL")
  if (!url) throw new Error("--database-url or DATABASE_URL is required")
  if (values["create-db"]) {
    const name = `hamlet_bench_${Date.now().toString(36)}`
    const admin = makePostgresClient(url, 1)
    await admin.unsafe(`create database ${name}`)
    await admin.end()
    const u = new URL(url)
    u.pathname = `/${name}`
    url = u.toString()
  }
  const sql = makePostgresClient(url, 1)
  const started = performance.now()
  const { lastSeq } = await seedEvents(sql, {
    host: values.host,
    events: Number(values.events),
    onProgress: (n) => n % 100_000 < BATCH && console.error(`  … seq ${n}`),
  })
  await sql.end()
  const seconds = (performance.now() - started) / 1000
  console.error(
    `seeded ${values.events} events on ${values.host} (head seq ${lastSeq}) in ${seconds.toFixed(1)} s`,
  )
  console.log(url)
}
