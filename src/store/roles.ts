/**
 * The non-owner role handler transactions run as, so row-level security applies
 * (owners and superusers bypass it). Roles are cluster-wide; creation is idempotent.
 */
export const TENANT_ROLE = "hamlet_tenant"

export const createTenantRoleSql = `do $$ begin
  create role ${TENANT_ROLE} nologin;
exception when duplicate_object or unique_violation then null;
end $$;
do $$ begin
  -- handlers enter it with set local role: a superuser may, any other role (a managed Postgres' main
  -- user owning the database) only as a member, or every handler fails at run time
  if not pg_has_role(current_user, '${TENANT_ROLE}', 'member') then
    execute format('grant %I to %I', '${TENANT_ROLE}', current_user);
  end if;
exception
  when unique_violation then null; -- another node granted it meanwhile
  when insufficient_privilege then
    raise exception 'Hamlet runs handlers as role ${TENANT_ROLE}, and % is not a member of it: grant ${TENANT_ROLE} to %', current_user, current_user;
end $$`

/** Advisory lock class of hosts' write locks (the key within it is a hash of the host). */
const HOST_WRITE_LOCK = 0x686f7374 // "host"

/**
 * Waits for the host's write lock, held until the transaction ends: writers of one host on
 * different nodes take turns instead of racing for the log's next seq.
 */
export const lockHostSql = (host: string): string =>
  `select pg_advisory_xact_lock(${HOST_WRITE_LOCK}, hashtext('${normalisedHost(host)}'))`

/** `host`, once checked to be a normalised hostname (it is bound into SQL). */
export const normalisedHost = (host: string): string => {
  // host is a validated DNS name (a-z 0-9 . -): safe inside a literal; checked again here
  if (!/^[a-z0-9.-]+$/.test(host)) throw new Error(`refusing unnormalised host ${JSON.stringify(host)}`)
  return host
}

/** Enter the tenant role and bind the host for the rest of the transaction. */
export const enterHostSql = (host: string): string =>
  `set local role ${TENANT_ROLE}; set local hamlet.host = '${normalisedHost(host)}'`
