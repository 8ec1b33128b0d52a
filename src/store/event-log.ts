/**
 * The host-partitioned event log: one partition of `hamlet_events` per host, created when
 * the host is registered; per-host gapless `seq`; per-stream `version`; a per-host hash
 * chain. Appends run inside the caller's transaction so projections commit with them.
 */
import { createHash } from "node:crypto"
import { Effect, Schema } from "effect"
import { isValidHostname } from "../ingress/host.ts"
import { type DatabaseError, query, type Sql, type SqlTx, UNIQUE_VIOLATION } from "./database.ts"
import { eventHash, GENESIS_HASH } from "./event-hash.ts"
import { runLockedDdl } from "./migrations.ts"
import { textLiteral } from "./sql-literal.ts"
import type { Column } from "./model-ddl.ts"
import { unnestInsert } from "./multi-row-insert.ts"
import type { StreamVersions } from "./stream-versions.ts"

/** The last event of a host: where the next append continues the chain. */
export interface LogHead {
  readonly seq: number
  readonly hash: string
}

export const EMPTY_HEAD: LogHead = { seq: 0, hash: GENESIS_HASH }

/** An event a command emitted, before it gets its place in the log. */
export interface PendingEvent {
  /** Version 1 without a lookup; a conflict if the stream already exists. */
  readonly startsStream?: boolean
  readonly stream: string
  readonly type: string
  readonly data: unknown
  readonly meta: Readonly<Record<string, unknown>>
}

export interface StoredEvent {
  readonly host: string
  readonly seq: number
  readonly project: string
  readonly stream: string
  readonly version: number
  readonly type: string
  readonly data: unknown
  readonly meta: Readonly<Record<string, unknown>>
  readonly recordedAt: Date
  readonly hash: string
}

/**
 * Whether `error` is a lost (host, seq) race: another writer of the host (a node, a cleanup job)
 * took the next seq first, on the primary key of the host's log partition. Another unique
 * violation (a stream that already exists, a projection's key) fails the same way every time.
 */
export const isSeqRace = (error: DatabaseError): boolean =>
  error.code === UNIQUE_VIOLATION && error.constraint !== undefined &&
  error.constraint.startsWith("hamlet_events_") && error.constraint.endsWith("_pkey")

/** Partition table name: stable, short, and safe whatever the hostname's length. */
export const partitionName = (host: string): string =>
  `hamlet_events_${createHash("sha256").update(host).digest("hex").slice(0, 24)}`

/** How long registering a host waits for a lock before it fails (`RegistrationLocked`). */
const REGISTER_LOCK_TIMEOUT_MS = 5_000

/**
 * Creates the host's partition (idempotent) and records which project owns the host; a
 * host removed earlier (its log kept) comes back with its log continuing.
 *
 * `source` says why the host is served: `directory` while a folder of its project holds it,
 * `database` once it was registered at run time (admin API, `<root>.ctl.hosts`). Registering a
 * live row again takes the new source, except that a folder never demotes a run-time host: a
 * host registered through the API stays served when a folder for it comes and goes.
 *
 * The partition is made as a table of its own and then attached: `create table … partition of`
 * takes an ACCESS EXCLUSIVE lock on `hamlet_events`, which waits for every open transaction on
 * the log (of any host) while every later statement on it, fleet-wide, queues behind it. `like`
 * takes ACCESS SHARE and `attach partition` SHARE UPDATE EXCLUSIVE on the parent: neither waits
 * for nor blocks reads and appends (attaching creates the parent's (host, seq) and (host, stream,
 * version) unique indexes on the new, empty table, so it scans nothing). Each step is skipped when
 * already done — a table made and never attached (by hand, or a run stopped between the two) is
 * attached by the next registration, and a host already registered takes no table lock at all —
 * and nodes registering together take turns on the migration lock, so the second finds the first's
 * work done. `lock_timeout` (after that lock) bounds the wait behind other DDL or maintenance on
 * the log: the registration fails with `RegistrationLocked` instead of waiting on.
 */
export const registerHost = (
  sql: Sql,
  project: string,
  host: string,
  source: "directory" | "database",
  options: { readonly lockTimeoutMs?: number } = {},
): Effect.Effect<void, RegisterHostError> => {
  if (!isValidHostname(host)) return Effect.fail(new BadHostname({ host }))
  const partition = partitionName(host)
  // a validated hostname (a-z 0-9 . -) and a hex name: nothing to escape in either, quoted anyway
  const literal = textLiteral(host)
  const lockTimeoutMs = Math.max(1, Math.round(options.lockTimeoutMs ?? REGISTER_LOCK_TIMEOUT_MS))
  return runLockedDdl(
    sql,
    `set local lock_timeout = ${lockTimeoutMs};
     do $register$ begin
       if to_regclass('${partition}') is null then
         create table ${partition} (like hamlet_events including defaults including constraints);
       end if;
       if not exists (select from pg_inherits where inhrelid = '${partition}'::regclass) then
         alter table hamlet_events attach partition ${partition} for values in (${literal});
       end if;
     end $register$;
     insert into hamlet_hosts (host, project, source, partition_name)
       values (${literal}, ${textLiteral(project)}, '${source}', '${partition}')
       on conflict (host) do update set removed_at = null,
         source = case when hamlet_hosts.removed_at is null and hamlet_hosts.source = 'database'
                       then 'database' else excluded.source end
         where hamlet_hosts.project = excluded.project`,
  ).pipe(
    Effect.mapError((error) =>
      error.code === LOCK_NOT_AVAILABLE ? new RegistrationLocked({ host, waitedMs: lockTimeoutMs }) : error
    ),
    // a host's log belongs to one project forever, even after removal: never hand it over
    Effect.andThen(hostOwner(sql, host)),
    Effect.flatMap((owner) =>
      owner === project
        ? Effect.void
        : Effect.fail(new HostOwnedElsewhere({ host, owner: String(owner), project }))
    ),
  )
}

/** Postgres' lock_not_available: `lock_timeout` ran out. */
const LOCK_NOT_AVAILABLE = "55P03"

/** The project that owns `host`'s log (registered, removed or not); undefined for an unknown host. */
export const hostOwner = (sql: Sql | SqlTx, host: string): Effect.Effect<string | undefined, DatabaseError> =>
  query(() => sql`select project from hamlet_hosts where host = ${host}`).pipe(
    Effect.map((rows) => rows[0] ? String(rows[0].project) : undefined),
  )

/** registerHost's failure for a host that is not a normalised hostname. */
export class BadHostname extends Schema.TaggedError<BadHostname>()("BadHostname", {
  host: Schema.String,
}) {
  override get message(): string {
    return `${JSON.stringify(this.host)} is not a hostname`
  }
}

/** registerHost's failure when another project owns (or owned) the host's log: it is never handed over. */
export class HostOwnedElsewhere extends Schema.TaggedError<HostOwnedElsewhere>()("HostOwnedElsewhere", {
  host: Schema.String,
  /** The project that owns the host's log. */
  owner: Schema.String,
  /** The project that asked for the host. */
  project: Schema.String,
}) {
  override get message(): string {
    return `host ${this.host} belongs to project ${this.owner}, not ${this.project}`
  }
}

/** registerHost's failure when a lock on the event log was not granted in time: retry later. */
export class RegistrationLocked extends Schema.TaggedError<RegistrationLocked>()("RegistrationLocked", {
  host: Schema.String,
  waitedMs: Schema.Number,
}) {
  override get message(): string {
    return `registering host ${this.host} waited ${this.waitedMs} ms for a lock on the event log ` +
      `(other DDL or maintenance on hamlet_events holds it); try again`
  }
}

export type RegisterHostError = DatabaseError | BadHostname | HostOwnedElsewhere | RegistrationLocked

/**
 * Reads of the log in a host transaction are unnamed statements with their values inline: planned
 * afresh at each run with the host at hand, so they prune to its partition even in a transaction
 * that lets named statements go generic (transaction.ts) — a generic plan on `hamlet_events` would
 * lock every partition at each execution (one per host). Without parameters, postgres.js sends
 * one in one round trip; with them it would ask Postgres for their types first (two round trips,
 * holding the connection's pipeline behind it).
 */
const readLog = (tx: SqlTx, text: () => string) => query(() => tx.unsafe(text(), [], { prepare: false }))

export const readHead = (tx: SqlTx, host: string): Effect.Effect<LogHead, DatabaseError> =>
  readLog(
    tx,
    () => `select seq, hash from hamlet_events where host = ${textLiteral(host)} order by seq desc limit 1`,
  ).pipe(
    Effect.map((rows) => rows[0] ? { seq: Number(rows[0].seq), hash: String(rows[0].hash) } : EMPTY_HEAD),
  )

const currentVersions = (
  tx: SqlTx,
  host: string,
  streams: ReadonlyArray<string>,
): Effect.Effect<Map<string, number>, DatabaseError> =>
  readLog(
    tx,
    () =>
      `select stream, max(version)::int8 as version from hamlet_events where host = ${textLiteral(host)}
       and stream in (${streams.map(textLiteral).join(", ")}) group by stream`,
  ).pipe(Effect.map((rows) => new Map(rows.map((r) => [String(r.stream), Number(r.version)]))))

export interface PlaceOptions {
  /**
   * Known stream versions (stream → last version), consulted before asking Postgres and
   * updated with the placed versions. Discard it if the transaction does not commit.
   */
  readonly versions?: StreamVersions
  /** Runs before versions are read from Postgres (a chained batch waits for the one before it). */
  readonly beforeRead?: Effect.Effect<void, DatabaseError>
}

/**
 * Gives events their place after `head`: seq, stream version and hash — without writing
 * them (`insertEvents` does). Only streams missing from `versions` cost a read.
 */
export const placeEvents = (
  tx: SqlTx,
  head: LogHead,
  host: string,
  project: string,
  pending: ReadonlyArray<PendingEvent>,
  recordedAt: Date,
  options: PlaceOptions = {},
): Effect.Effect<Array<StoredEvent>, DatabaseError> =>
  Effect.gen(function* () {
    if (pending.length === 0) return []
    const versions = options.versions ?? new Map<string, number>()
    const unknown = [...new Set(pending.filter((e) => !e.startsStream).map((e) => e.stream))]
      .filter((s) => versions.get(s) === undefined)
    if (unknown.length > 0) {
      if (options.beforeRead) yield* options.beforeRead
      const found = yield* currentVersions(tx, host, unknown)
      for (const stream of unknown) versions.set(stream, found.get(stream) ?? 0)
    }
    const stored: Array<StoredEvent> = []
    let prev = head
    for (const { startsStream, ...event } of pending) {
      // a stream-starting event is version 1; (host, stream, version) rejects it otherwise
      const version = startsStream ? 1 : (versions.get(event.stream) ?? 0) + 1
      versions.set(event.stream, version)
      const seq = prev.seq + 1
      const hash = eventHash(prev.hash, {
        host,
        seq,
        project,
        stream: event.stream,
        version,
        type: event.type,
        data: event.data,
        meta: event.meta,
        recordedAt: recordedAt.toISOString(),
      })
      stored.push({ host, seq, project, version, hash, recordedAt, ...event })
      prev = { seq, hash }
    }
    return stored
  })

/** The columns an event row is written with (host aside), in `eventRow` order. */
const WRITTEN_COLUMNS: ReadonlyArray<Column> = [
  { name: "seq", type: "int8", isNullable: false, isJson: false },
  { name: "project", type: "text", isNullable: false, isJson: false },
  { name: "stream", type: "text", isNullable: false, isJson: false },
  { name: "version", type: "int4", isNullable: false, isJson: false },
  { name: "type", type: "text", isNullable: false, isJson: false },
  { name: "data", type: "jsonb", isNullable: false, isJson: true },
  { name: "meta", type: "jsonb", isNullable: false, isJson: true },
  { name: "recorded_at", type: "timestamptz", isNullable: false, isJson: false },
  { name: "hash", type: "text", isNullable: false, isJson: false },
]

const eventRow = (e: StoredEvent): ReadonlyArray<unknown> => [
  e.seq,
  e.project,
  e.stream,
  e.version,
  e.type,
  e.data,
  e.meta,
  e.recordedAt,
  e.hash,
]

/**
 * The insert of placed events of one host (one statement, prepared once per connection: see
 * multi-row-insert.ts; not yet sent). Two nodes appending to one host collide on (host, seq);
 * the caller reloads its head and retries.
 */
export const insertEvents = (tx: SqlTx, stored: ReadonlyArray<StoredEvent>) => {
  // every column has an array form: always one unnest statement
  const { text, params } = unnestInsert(tx, {
    table: "hamlet_events",
    host: stored[0].host,
    columns: WRITTEN_COLUMNS,
    rows: stored.map(eventRow),
  })!
  // deno-lint-ignore no-explicit-any -- postgres.js types parameters as its own serializable union
  return tx.unsafe(text, params as any, { prepare: true })
}

/** Places and inserts events after `head` in the caller's transaction; returns them as stored. */
export const appendEvents = (
  ...args: Parameters<typeof placeEvents>
): Effect.Effect<ReadonlyArray<StoredEvent>, DatabaseError> =>
  placeEvents(...args).pipe(
    Effect.tap((stored) =>
      stored.length === 0 ? Effect.void : Effect.asVoid(query(() => insertEvents(args[0], stored)))
    ),
  )

/** The columns `rowToStoredEvent` reads (select them with `tx(EVENT_COLUMNS)`). */
export const EVENT_COLUMNS = [
  "host",
  "seq",
  "project",
  "stream",
  "version",
  "type",
  "data",
  "meta",
  "recorded_at",
  "hash",
] as const

export const rowToStoredEvent = (row: Record<string, unknown>): StoredEvent => ({
  host: String(row.host),
  seq: Number(row.seq),
  project: String(row.project),
  stream: String(row.stream),
  version: Number(row.version),
  type: String(row.type),
  data: row.data,
  meta: (row.meta ?? {}) as Record<string, unknown>,
  recordedAt: row.recorded_at as Date,
  hash: String(row.hash),
})
