/**
 * Idempotent schema for Hamlet's own tables, run at start by every node. A transaction-
 * scoped advisory lock serialises nodes that start together.
 */
import { Effect } from "effect"
import { createHash } from "node:crypto"
import type postgres from "postgres"
import { type DatabaseError, query, type Sql } from "./database.ts"
import { createTenantRoleSql, TENANT_ROLE } from "./roles.ts"

const MIGRATION_LOCK = 0x68616d6c // "haml"

const coreDdl = `
create table if not exists hamlet_events (
  host text not null,
  seq bigint not null,
  project text not null,
  stream text not null,
  version integer not null,
  type text not null,
  data jsonb not null,
  meta jsonb not null,
  recorded_at timestamptz not null,
  hash text not null,
  primary key (host, seq),
  unique (host, stream, version)
) partition by list (host);
create table if not exists hamlet_hosts (
  host text primary key,
  project text not null,
  source text not null,
  partition_name text not null,
  created_at timestamptz not null default now()
);
alter table hamlet_hosts add column if not exists removed_at timestamptz;
create table if not exists hamlet_idempotency (
  host text not null,
  key text not null,
  reply jsonb not null,
  created_at timestamptz not null default now(),
  primary key (host, key)
);
create table if not exists hamlet_dlq (
  id bigserial primary key,
  host text not null,
  project text not null,
  subject text not null,
  payload text not null,
  error text not null,
  created_at timestamptz not null default now()
);
create index if not exists hamlet_dlq_host_idx on hamlet_dlq (host);
create table if not exists hamlet_sessions (
  host text not null,
  id text not null,
  data jsonb not null default '{}',
  expires_at timestamptz not null,
  primary key (host, id)
);
create table if not exists host_secrets (
  host text not null,
  key_id text not null,
  key_hash text not null,
  created_at timestamptz not null default now(),
  revoked_at timestamptz,
  primary key (host, key_id)
);
create table if not exists hamlet_schedule (
  name text not null,
  period_start timestamptz not null,
  claimed_by text not null,
  claimed_at timestamptz not null default now(),
  primary key (name, period_start)
);
alter table hamlet_events enable row level security;
drop policy if exists host_isolation on hamlet_events;
create policy host_isolation on hamlet_events using (host = current_setting('hamlet.host', true))
  with check (host = current_setting('hamlet.host', true));
alter table hamlet_idempotency enable row level security;
drop policy if exists host_isolation on hamlet_idempotency;
create policy host_isolation on hamlet_idempotency using (host = current_setting('hamlet.host', true))
  with check (host = current_setting('hamlet.host', true));
alter table hamlet_sessions enable row level security;
drop policy if exists host_isolation on hamlet_sessions;
create policy host_isolation on hamlet_sessions using (host = current_setting('hamlet.host', true))
  with check (host = current_setting('hamlet.host', true));
grant select, insert, update, delete on hamlet_sessions to ${TENANT_ROLE};
grant select, insert on hamlet_events to ${TENANT_ROLE};
grant select, insert on hamlet_idempotency to ${TENANT_ROLE};
`

/** Runs `ddl` under the migration lock, in one transaction. */
export const runLockedDdl = (
  sql: Sql,
  ddl: string,
): Effect.Effect<void, DatabaseError> =>
  query(() =>
    sql.begin(async (tx) => {
      await tx.unsafe(`select pg_advisory_xact_lock(${MIGRATION_LOCK})`)
      await tx.unsafe(ddl)
    })
  ).pipe(Effect.asVoid)

/** Postgres' undefined_table: the record of applied schemas does not exist yet. */
const UNDEFINED_TABLE = "42P01"

const schemaHash = (ddl: string) => createHash("sha256").update(ddl).digest("hex")

/**
 * Brings a schema to `ddl` (idempotent DDL) unless that same text was applied before: its
 * ALTERs and policy changes take exclusive table locks, and run on every start they would
 * queue every query of the nodes already running behind them (and deadlock their jobs). A
 * changed `ddl` (a new field, a new model) runs once, on the first node to start with it.
 */
export const migrateSchema = (sql: Sql, ddl: string): Effect.Effect<void, DatabaseError> => {
  const hash = schemaHash(ddl)
  const isApplied = (tx: Sql | postgres.TransactionSql) =>
    query(() => tx`select 1 from hamlet_schema_applied where ddl_hash = ${hash}`).pipe(
      Effect.map((rows) => rows.length > 0),
      Effect.catchIf((e) => e.code === UNDEFINED_TABLE, () => Effect.succeed(false)),
    )
  return Effect.gen(function* () {
    if (yield* isApplied(sql)) return
    yield* runLockedDdl(
      sql,
      `${ddl};
      create table if not exists hamlet_schema_applied (
        ddl_hash text primary key,
        applied_at timestamptz not null default now()
      );
      insert into hamlet_schema_applied (ddl_hash) values ('${hash}') on conflict do nothing`,
    )
  })
}

export const migrateCore = (sql: Sql) =>
  Effect.gen(function* () {
    // the role is cluster-wide: create it outside the lock's transaction so a duplicate
    // from another database never aborts the migration
    yield* query(() => sql.unsafe(createTenantRoleSql))
    yield* migrateSchema(sql, coreDdl)
  })
