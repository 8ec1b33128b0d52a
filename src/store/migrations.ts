/**
 * Idempotent schema for Hamlet's own tables, and how schema DDL is applied (this and each
 * project's read tables): at start by every node, under a transaction-scoped advisory lock that
 * serialises nodes starting together, and skipped when it already ran and what it made is
 * unchanged (`migrateSchema`).
 */
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { type DatabaseError, query, type Sql, type SqlTx } from "./database.ts"
import { withOwnerTransaction } from "./transaction.ts"
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
create table if not exists hamlet_signed_host_changes (
  project text not null,
  host text not null,
  signed_at bigint not null,
  primary key (project, host)
);
create table if not exists hamlet_idempotency (
  host text not null,
  key text not null,
  reply jsonb not null,
  created_at timestamptz not null default now(),
  primary key (host, key)
);
alter table hamlet_idempotency add column if not exists request text;
create table if not exists hamlet_dlq (
  id bigserial primary key,
  host text not null,
  project text not null,
  subject text not null,
  payload text not null,
  error text not null,
  created_at timestamptz not null default now()
);
alter table hamlet_dlq add column if not exists handler text not null default '';
alter table hamlet_dlq add column if not exists request_id text;
alter table hamlet_dlq add column if not exists code text not null default 'internal';
alter table hamlet_dlq add column if not exists attempts integer not null default 0;
alter table hamlet_dlq add column if not exists last_tried_at timestamptz;
alter table hamlet_dlq add column if not exists request_bytes integer;
drop index if exists hamlet_dlq_host_idx;
create index if not exists hamlet_dlq_host_id_idx on hamlet_dlq (host, id);
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
alter table hamlet_schedule add column if not exists lease_until timestamptz;
alter table hamlet_schedule add column if not exists completed_at timestamptz;
alter table hamlet_schedule add column if not exists attempts integer not null default 1;
alter table hamlet_schedule add column if not exists last_error text;
-- a claim made before leases existed (no lease_until) was run when claimed: it counts as completed
update hamlet_schedule set completed_at = claimed_at where lease_until is null and completed_at is null;
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

/** The tables `coreDdl` makes (its fingerprint covers these: host partitions come and go). */
const CORE_TABLES = [
  "hamlet_events",
  "hamlet_hosts",
  "hamlet_signed_host_changes",
  "hamlet_idempotency",
  "hamlet_dlq",
  "hamlet_sessions",
  "host_secrets",
  "hamlet_schedule",
]

const schemaHash = (ddl: string) => createHash("sha256").update(ddl).digest("hex")

/** What a schema's DDL makes, for `migrateSchema` to check: a Postgres schema's tables (all, or these). */
export interface SchemaScope {
  /** Undefined: the current schema (where Hamlet's own tables live). */
  readonly schema?: string
  /** Undefined: every table of the schema. */
  readonly tables?: ReadonlyArray<string>
}

type Conn = Sql | SqlTx

/**
 * A digest of what the DDL made, as the catalogs say now (reading them locks no table): each
 * table's columns, row-level security, policies, indexes and grants, and the schema's grants.
 * A table dropped, a grant lost in a restore, security turned off by hand all change it.
 */
const fingerprint = (tx: Conn, { schema, tables }: SchemaScope): Effect.Effect<string, DatabaseError> => {
  const names = tables === undefined ? null : [...tables]
  return query(() =>
    tx`select md5(coalesce(string_agg(entry, E'\n' order by entry), '')) as fingerprint from (
      select 'schema ' || coalesce(n.nspacl::text, '') as entry from pg_namespace n
        where n.nspname = coalesce(${schema ?? null}::text, current_schema())
      union all
      select c.relname || ' ' || c.relrowsecurity || ' ' || coalesce(c.relacl::text, '') || ' ' ||
        coalesce((select string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) ||
          case when a.attnotnull then '!' else '' end, ',' order by a.attnum)
          from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '') || ' ' ||
        coalesce((select string_agg(p.polname || ':' || coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ':' ||
          coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''), ',' order by p.polname)
          from pg_policy p where p.polrelid = c.oid), '') || ' ' ||
        coalesce((select string_agg(i.relname, ',' order by i.relname)
          from pg_index x join pg_class i on i.oid = x.indexrelid where x.indrelid = c.oid), '')
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = coalesce(${schema ?? null}::text, current_schema())
        and c.relkind in ('r', 'p') and not c.relispartition
        and (${names}::text[] is null or c.relname = any(${names}::text[]))
    ) entries`
  ).pipe(Effect.map((rows) => String(rows[0].fingerprint)))
}

/** What the schema was like after `ddl` last ran here; undefined if it never ran. */
const recorded = (tx: Conn, hash: string): Effect.Effect<string | undefined, DatabaseError> =>
  Effect.gen(function* () {
    // asked first: selecting from a table that does not exist yet would log an error in Postgres
    const [{ present }] = yield* query(() =>
      tx`select to_regclass('hamlet_schema_applied') is not null as present`
    )
    if (!present) return undefined
    const rows = yield* query(() =>
      tx`select fingerprint from hamlet_schema_applied where ddl_hash = ${hash}`
    )
    return rows[0]?.fingerprint as string | undefined
  })

/**
 * Brings a schema to `ddl` (idempotent DDL), unless that same text already ran here and what it
 * made is still as it left it (`fingerprint`): its ALTERs and policy changes take exclusive
 * table locks, and run at every start they would queue every query of the nodes already running
 * behind them (and deadlock their jobs). A changed `ddl` (a new field, a new model) runs once,
 * on the first node to start with it — nodes starting together check again under the lock — and
 * so does an unchanged one whose tables, security or grants were changed by hand or lost in a
 * restore.
 */
export const migrateSchema = (
  sql: Sql,
  ddl: string,
  scope: SchemaScope,
): Effect.Effect<void, DatabaseError> => {
  const hash = schemaHash(ddl)
  const isCurrent = (tx: Conn) =>
    Effect.flatMap(
      recorded(tx, hash),
      (stored) =>
        stored === undefined
          ? Effect.succeed(false)
          : Effect.map(fingerprint(tx, scope), (now) => now === stored),
    )
  return Effect.gen(function* () {
    if (yield* isCurrent(sql)) return
    yield* withOwnerTransaction(sql, (tx) =>
      Effect.gen(function* () {
        yield* query(() => tx.unsafe(`select pg_advisory_xact_lock(${MIGRATION_LOCK})`))
        yield* query(() =>
          tx.unsafe(`create table if not exists hamlet_schema_applied (
            ddl_hash text primary key,
            fingerprint text not null,
            applied_at timestamptz not null default now()
          )`)
        )
        if (yield* isCurrent(tx)) return // another node applied it meanwhile
        yield* query(() => tx.unsafe(ddl))
        const made = yield* fingerprint(tx, scope)
        yield* query(() =>
          tx`insert into hamlet_schema_applied (ddl_hash, fingerprint) values (${hash}, ${made})
             on conflict (ddl_hash) do update set fingerprint = excluded.fingerprint, applied_at = now()`
        )
      }))
  })
}

export const migrateCore = (sql: Sql) =>
  Effect.gen(function* () {
    // the role is cluster-wide: create it outside the lock's transaction so a duplicate
    // from another database never aborts the migration
    yield* query(() => sql.unsafe(createTenantRoleSql))
    yield* migrateSchema(sql, coreDdl, { tables: CORE_TABLES })
  })
