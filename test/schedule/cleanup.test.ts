/**
 * The cleanup jobs as a tenant sees them: soft-deleted rows past retention disappear,
 * newer ones stay, expired sessions go, and each purge is an event in the host's log —
 * announced on the bus, the chain intact, the host still accepting writes afterwards. Run as a
 * scheduled period, a host that fails does not stop the others, and the period is retried.
 */
import { Duration, Effect, Exit, Layer, Scope } from "effect"
import { createHash } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Auditor, AuditorLive } from "../../src/audit/auditor.ts"
import { decodeText } from "../../src/bus/envelope.ts"
import { eventSubject } from "../../src/bus/subjects.ts"
import {
  cleanupJobs,
  deadLetterExpiry,
  idempotencyExpiry,
  sessionExpiry,
  softDeleteCleanup,
} from "../../src/schedule/cleanup-jobs.ts"
import { periodStart } from "../../src/schedule/claim.ts"
import { appendSystemEvents } from "../../src/schedule/system-append.ts"
import { Database } from "../../src/store/database.ts"
import { attemptPeriod, settlePeriod } from "../../src/schedule/period-run.ts"
import { partitionName } from "../../src/store/event-log.ts"
import { lockHostSql } from "../../src/store/roles.ts"
import { readLog, verifyLog } from "../support/event-log.ts"
import { until } from "../support/eventually.ts"
import { startTestServer, type TestServer, type TestServerOptions } from "../support/server.ts"
import { checkService } from "../support/services.ts"

const BLOG = "blog.example.com"
const NEWS = "news.example.com"
const HOUR = Duration.hours(1)
/** What an expiry event records of a session id. */
const sha256 = (id: string) => createHash("sha256").update(id).digest("hex")

const hasServices = await checkService("postgres") && await checkService("nats")

const describeCleanup = (options: TestServerOptions) =>
  describe(`fleet-wide cleanup jobs on ${options.store} with the ${options.bus} bus`, () => {
    let server: TestServer
    const scope = Effect.runSync(Scope.make())
    beforeAll(async () => {
      server = await startTestServer(options)
      // the server runs each cleanup job for the current period as it starts, on its own fibers:
      // until that run is done, it may purge the rows a test set up for its own call to purge
      await until("the server's own cleanup runs at start", async () => {
        const [{ n }] = await server.sql`select count(*)::int as n from hamlet_schedule
          where completed_at is not null and period_start = ${
          periodStart(Date.now(), Duration.toMillis(HOUR))
        }
            and name in ('SoftDeleteCleanup', 'SessionExpiry', 'IdempotencyExpiry', 'DeadLetterExpiry')`
        return n === 4
      })
    }, 60_000)
    afterAll(async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await server?.close()
    })

    const post = async (host: string, path: string, body: unknown) => {
      const res = await server.call(host, path, { body: JSON.stringify(body) })
      expect(res.status).toBe(200)
      return await res.json()
    }
    /** An item of `host` soft-deleted 31 days ago (horatio keeps soft-deleted items 30 days). */
    const oldDeletedItem = async (host: string, title: string): Promise<string> => {
      const item = await post(host, "/api/SubmitItem", { title })
      await post(host, "/api/DeleteItem", { id: item.id })
      await server.sql`update horatio.microblog_item set deleted_at = now() - interval '31 days'
                     where host = ${host} and id = ${item.id}`
      return item.id
    }
    const itemIds = async (host: string) =>
      (await server.sql`select id from horatio.microblog_item where host = ${host}`).map((r) => String(r.id))
    const projects = () => [...server.supervisor.routing().projects.values()]
    const log = () => ({ sql: server.sql, bus: server.bus })
    /** Every announcement heard on `subject`, decoded. */
    const listen = async (subject: string) => {
      const heard: Array<Record<string, unknown>> = []
      await Effect.runPromise(
        Scope.provide(
          server.bus.subscribe(subject, (m) => heard.push(JSON.parse(decodeText(m.data)))),
          scope,
        ),
      )
      return heard
    }

    it("purges soft-deleted rows past retention as an event in the host's log, announced on the bus", async () => {
      const heard = await listen(eventSubject("horatio", BLOG, "HamletRowsPurged"))
      const old = await oldDeletedItem(BLOG, "old news")
      const older = await oldDeletedItem(BLOG, "older news")
      const recent = await post(BLOG, "/api/SubmitItem", { title: "recent news" })
      await post(BLOG, "/api/DeleteItem", { id: recent.id })

      const purged = await Effect.runPromise(softDeleteCleanup(log(), projects(), new Date()))
      expect(purged).toBe(2)
      expect(await itemIds(BLOG)).toEqual([recent.id])

      const purge = (await readLog(server.sql, BLOG)).filter((e) => e.type === "HamletRowsPurged")
      expect(purge).toHaveLength(1)
      expect(purge[0].data.table).toBe("microblog_item")
      expect([...(purge[0].data.ids as Array<string>)].sort()).toEqual([old, older].sort())
      expect(await verifyLog(server.sql, BLOG)).toMatchObject({ isGapless: true, brokenAt: undefined })
      await until("the purge's announcement", () => heard.length === 1)
      expect(heard[0]).toMatchObject({
        host: BLOG,
        seq: Number(purge[0].seq),
        stream: "hamlet-purge-microblog_item",
        type: "HamletRowsPurged",
        data: purge[0].data,
      })

      // the host's actor had a stale head: its next write still lands, gapless
      await post(BLOG, "/api/SubmitItem", { title: "after the purge" })
      expect(await verifyLog(server.sql, BLOG)).toMatchObject({ isGapless: true, brokenAt: undefined })
      expect(await Effect.runPromise(softDeleteCleanup(log(), projects(), new Date()))).toBe(0)
    })

    it("expires sessions past their time, records their count and ids' sha256 in the host's log — never the ids — and announces it", async () => {
      const heard = await listen(eventSubject("horatio", BLOG, "HamletSessionsExpired"))
      // a project may use the session's bearer token as its id
      const tokens = [`token-${crypto.randomUUID()}`, `token-${crypto.randomUUID()}`]
      await server.sql`insert into hamlet_sessions (host, id, expires_at) values
      (${BLOG}, ${tokens[0]}, now() - interval '1 minute'), (${BLOG}, ${
        tokens[1]
      }, now() - interval '2 minutes'),
      (${BLOG}, 'alive-1', now() + interval '1 hour')`
      const expired = await Effect.runPromise(sessionExpiry(log(), projects(), new Date()))
      expect(expired).toBe(2)
      const left = await server.sql`select id from hamlet_sessions where host = ${BLOG}`
      expect(left.map((r) => r.id)).toEqual(["alive-1"])
      const events = (await readLog(server.sql, BLOG)).filter((e) => e.type === "HamletSessionsExpired")
      expect(events.map((e) => e.data)).toEqual([{
        count: 2,
        idSha256: tokens.map(sha256).sort(),
        expiredBefore: expect.any(String),
      }])
      const logged = await server
        .sql`select data::text || meta::text as text from hamlet_events where host = ${BLOG}`
      for (const token of tokens) expect(logged.map((r) => r.text).join("\n")).not.toContain(token)
      expect(await verifyLog(server.sql, BLOG)).toMatchObject({ isGapless: true, brokenAt: undefined })
      await until("the expiry's announcement", () => heard.length === 1)
      expect(heard[0]).toMatchObject({
        host: BLOG,
        seq: Number(events[0].seq),
        type: "HamletSessionsExpired",
        data: events[0].data,
      })
    })

    it("a log holding an expiry of the shape written before (its raw ids) still verifies and rebuilds", async () => {
      const horatio = projects().find((p) => p.name === "horatio")!
      await Effect.runPromise(appendSystemEvents(log(), horatio, NEWS, () =>
        Effect.succeed([{
          stream: "hamlet-sessions",
          type: "HamletSessionsExpired",
          data: { ids: ["old-token-1"], expiredBefore: new Date().toISOString() },
          meta: { handler: "SessionExpiry", system: true },
        }])))
      await server.sql`insert into hamlet_sessions (host, id, expires_at) values
        (${NEWS}, 'new-token-1', now() - interval '1 minute')`
      expect(await Effect.runPromise(sessionExpiry(log(), projects(), new Date()))).toBe(1)
      const report = await Effect.runPromise(
        Effect.gen(function* () {
          return yield* (yield* Auditor).verify(NEWS)
        }).pipe(
          Effect.provide(
            AuditorLive("./config.json").pipe(
              Layer.provide(
                Layer.succeed(Database, { sql: server.sql, kind: options.store ?? "pglite", url: undefined }),
              ),
            ),
          ),
        ),
      )
      expect(report.chain.breaks).toEqual([])
      expect(report.projections?.drifts).toEqual([])
      const expiries = (await readLog(server.sql, NEWS)).filter((e) => e.type === "HamletSessionsExpired")
      expect(expiries.map((e) => e.data.ids ?? e.data.idSha256)).toEqual([["old-token-1"], [
        sha256("new-token-1"),
      ]])
    })

    /**
     * `server.sql`, but the first statement whose text has `marker` (the job's read of what is
     * due, outside any transaction) waits for `meanwhile` once answered: what another node or the
     * tenant does between that read and the job's transaction.
     */
    const sqlWith = (marker: string, meanwhile: () => Promise<unknown>) => {
      let isDone = false
      const hold = (text: string, statement: Promise<unknown>) => {
        if (isDone || !text.includes(marker)) return statement
        isDone = true
        return statement.then(async (rows) => {
          await meanwhile()
          return rows
        })
      }
      const sql = new Proxy(server.sql, {
        apply: (target, self, args) => hold(String(args[0]?.join?.("")), Reflect.apply(target, self, args)),
        get: (target, prop) => {
          const value = Reflect.get(target, prop)
          if (prop === "unsafe") {
            return (text: string, ...rest: Array<never>) => hold(text, value.call(target, text, ...rest))
          }
          return typeof value === "function" ? value.bind(target) : value
        },
      })
      return { log: { sql, bus: server.bus }, wasHeld: () => isDone }
    }
    const expiryEventsOf = async (host: string, id: string) =>
      (await readLog(server.sql, host)).filter((e) =>
        e.type === "HamletSessionsExpired" && (e.data.idSha256 as Array<string>).includes(sha256(id))
      )

    it("keeps a session renewed after the job listed it as expired, and logs no expiry of it", async () => {
      await server.sql`insert into hamlet_sessions (host, id, expires_at) values
      (${BLOG}, 'renewed-1', now() - interval '1 minute')`
      // renewed once the job has read which sessions expired, before it deletes them
      const { log, wasHeld } = sqlWith(
        "from hamlet_sessions s",
        () =>
          server.sql`update hamlet_sessions set expires_at = now() + interval '1 hour'
                   where host = ${BLOG} and id = 'renewed-1'`,
      )
      expect(await Effect.runPromise(sessionExpiry(log, projects(), new Date()))).toBe(0)
      expect(wasHeld()).toBe(true)
      const left = await server.sql`select id from hamlet_sessions where host = ${BLOG} and id = 'renewed-1'`
      expect(left.map((r) => r.id)).toEqual(["renewed-1"])
      expect(await expiryEventsOf(BLOG, "renewed-1")).toEqual([])
      await server.sql`delete from hamlet_sessions where host = ${BLOG} and id = 'renewed-1'`
    })

    it("a session expiry run that another node's run overtook logs each expiry once", async () => {
      await server.sql`insert into hamlet_sessions (host, id, expires_at) values
      (${BLOG}, 'overtaken-1', now() - interval '1 minute'), (${BLOG}, 'overtaken-2', now() - interval '1 minute')`
      // the next period's run (another node) expires them between this run's read and its delete
      const { log, wasHeld } = sqlWith(
        "from hamlet_sessions s",
        () => Effect.runPromise(sessionExpiry({ sql: server.sql, bus: server.bus }, projects(), new Date())),
      )
      expect(await Effect.runPromise(sessionExpiry(log, projects(), new Date()))).toBe(0)
      expect(wasHeld()).toBe(true)
      const events = await expiryEventsOf(BLOG, "overtaken-1")
      expect(events.map((e) => e.data.idSha256)).toEqual([["overtaken-1", "overtaken-2"].map(sha256).sort()])
      expect(await verifyLog(server.sql, BLOG)).toMatchObject({ isGapless: true, brokenAt: undefined })
    })

    it("a purge run that another node's run overtook logs each purge once", async () => {
      const item = await oldDeletedItem(BLOG, "purged once")
      const { log, wasHeld } = sqlWith(
        "deleted_at <",
        () =>
          Effect.runPromise(softDeleteCleanup({ sql: server.sql, bus: server.bus }, projects(), new Date())),
      )
      expect(await Effect.runPromise(softDeleteCleanup(log, projects(), new Date()))).toBe(0)
      expect(wasHeld()).toBe(true)
      expect(await itemIds(BLOG)).not.toContain(item)
      const purges = (await readLog(server.sql, BLOG)).filter((e) =>
        e.type === "HamletRowsPurged" && (e.data.ids as Array<string>).includes(item)
      )
      expect(purges).toHaveLength(1)
      expect(await verifyLog(server.sql, BLOG)).toMatchObject({ isGapless: true, brokenAt: undefined })
    })

    // PGlite is one backend session: no other connection's writer to queue behind
    it.skipIf(options.store === "pglite")(
      "an expiry waits for the host's write lock, as another node's command batch holds it",
      async () => {
        await server.sql`insert into hamlet_sessions (host, id, expires_at) values
        (${BLOG}, 'queued-1', now() - interval '1 minute')`
        let release = () => {}
        const released = new Promise<void>((resolve) => release = resolve)
        let isLocked = () => {}
        const locked = new Promise<void>((resolve) => isLocked = resolve)
        const holder = server.sql.begin(async (tx) => {
          await tx.unsafe(lockHostSql(BLOG))
          isLocked()
          await released
        })
        await locked
        let isExpired = false
        const expiry = Effect.runPromise(sessionExpiry(log(), projects(), new Date())).then((n) => {
          isExpired = true
          return n
        })
        try {
          await until(
            "the expiry to wait for the host's write lock",
            async () =>
              (await server.sql`select count(*)::int as n from pg_locks
                              where locktype = 'advisory' and not granted`)[0].n >= 1,
          )
          expect(isExpired).toBe(false)
        } finally {
          release()
          await holder
        }
        expect(await expiry).toBe(1)
        expect((await expiryEventsOf(BLOG, "queued-1")).map((e) => e.data.idSha256)).toEqual([[
          sha256("queued-1"),
        ]])
      },
    )

    it("forgets idempotency keys past their retention, and keeps the others' replies", async () => {
      await server.sql`insert into hamlet_idempotency (host, key, reply, created_at) values
        (${BLOG}, 'old-key', '{"ok":true}', now() - interval '9 days'),
        (${BLOG}, 'recent-key', '{"ok":true}', now() - interval '7 days')`
      expect(await Effect.runPromise(idempotencyExpiry(log(), new Date()))).toBe(1)
      const left = await server.sql`select key from hamlet_idempotency
        where host = ${BLOG} and key in ('old-key', 'recent-key')`
      expect(left.map((r) => r.key)).toEqual(["recent-key"])
    })

    it("deletes dead letters older than 30 days, and keeps the others", async () => {
      await server
        .sql`insert into hamlet_dlq (host, project, subject, handler, payload, code, error, created_at)
        values
        (${BLOG}, 'horatio', 's', 'SubmitItem', 'old', 'bad_request', '{}', now() - interval '31 days'),
        (${BLOG}, 'horatio', 's', 'SubmitItem', 'recent', 'bad_request', '{}', now() - interval '29 days')`
      expect(await Effect.runPromise(deadLetterExpiry(log(), new Date()))).toBe(1)
      const left = await server.sql`select payload from hamlet_dlq where host = ${BLOG}`
      expect(left.map((r) => r.payload)).toEqual(["recent"])
    })

    it("keeps a host's newest 10,000 dead letters, and other hosts' all", async () => {
      await server.sql`insert into hamlet_dlq (host, project, subject, handler, payload, code, error)
        select ${NEWS}, 'horatio', 's', 'SubmitItem', 'n' || i, 'bad_request', '{}'
        from generate_series(1, 10003) i`
      expect(await Effect.runPromise(deadLetterExpiry(log(), new Date()))).toBe(3)
      const [news] = await server
        .sql`select count(*)::int as n, min(payload) filter (where payload in ('n1', 'n4')) as oldest
        from hamlet_dlq where host = ${NEWS}`
      expect(news).toEqual({ n: 10_000, oldest: "n4" })
      expect((await server.sql`select count(*)::int as n from hamlet_dlq where host = ${BLOG}`)[0].n).toBe(1)
      await server.sql`delete from hamlet_dlq where host = ${NEWS}`
    })

    it("a scheduled period with a failing host still cleans the other hosts, and is retried until done", async () => {
      const blogItem = await oldDeletedItem(BLOG, "blog: old")
      const newsItem = await oldDeletedItem(NEWS, "news: old")
      // blog's log refuses appends while it is listed (blog comes first: the job goes host by host)
      await server.sql.unsafe(`
      create table failing_hosts (host text primary key);
      create function fail_listed_host() returns trigger language plpgsql security definer as $$
      begin
        if exists (select 1 from failing_hosts where host = new.host) then
          raise exception 'injected failure for %', new.host;
        end if;
        return new;
      end $$;
      create trigger fail_listed_host before insert on ${partitionName(BLOG)}
        for each row execute function fail_listed_host();
      insert into failing_hosts values ('${BLOG}');`)
      const [softDelete] = cleanupJobs(log(), projects, HOUR)
      // a job of its own name: the server's own scheduler keeps to SoftDeleteCleanup
      const job = { ...softDelete, name: "SoftDeleteCleanupUnderTest" }
      const period = periodStart(Date.now(), Duration.toMillis(HOUR))

      const first = await Effect.runPromise(Effect.exit(attemptPeriod(server.sql, "node-a", job, period)))
      expect(Exit.isFailure(first)).toBe(true)
      expect(JSON.stringify(first)).toContain("TargetsFailed")
      // news was cleaned even though blog, before it, failed
      expect(await itemIds(NEWS)).not.toContain(newsItem)
      expect(await itemIds(BLOG)).toContain(blogItem)
      // the period is not done, and its lease was given back
      const [claim] = await server.sql`select completed_at, lease_until <= now() as is_free, last_error
                                     from hamlet_schedule where name = ${job.name}`
      expect(claim).toMatchObject({ completed_at: null, is_free: true })
      expect(String(claim.last_error)).toContain(BLOG)

      await server.sql`delete from failing_hosts`
      const retried = await Effect.runPromise(
        settlePeriod(server.sql, "node-b", job, period, {
          lease: Duration.seconds(30),
          retryFrom: Duration.millis(20),
        }),
      )
      expect(retried).toMatchObject({ _tag: "Ran", count: 1, attempt: 2 })
      expect(await itemIds(BLOG)).not.toContain(blogItem)
      // news had nothing left to purge: one purge event, from the first attempt
      const newsPurges = (await readLog(server.sql, NEWS)).filter((e) => e.type === "HamletRowsPurged")
      expect(newsPurges.map((e) => e.data.ids)).toEqual([[newsItem]])
      const [done] = await server
        .sql`select completed_at, claimed_by from hamlet_schedule where name = ${job.name}`
      expect(done.completed_at).not.toBeNull()
      expect(done.claimed_by).toBe("node-b")
      for (const host of [BLOG, NEWS]) {
        expect(await verifyLog(server.sql, host)).toMatchObject({ isGapless: true, brokenAt: undefined })
      }
    })

    // last: its purge events stay in news' log
    it("purges a large backlog a thousand rows per transaction, each a short hold of the host", async () => {
      // rows written straight into the read table (the purge reads the table, not the log)
      await server.sql`insert into horatio.microblog_item
          (host, id, title, link, extract, owner_comment, tags, comment_count, created_at, deleted_at)
        select ${NEWS}, 'backlog-' || lpad(i::text, 5, '0'), 't', null, null, null, '[]', 0, now(),
               now() - interval '31 days'
        from generate_series(1, 2500) i`
      expect(await Effect.runPromise(softDeleteCleanup(log(), projects(), new Date()))).toBe(2500)
      const purges = await server.sql`select xmin::text as tx, jsonb_array_length(data->'ids') as n
        from hamlet_events where host = ${NEWS} and type = 'HamletRowsPurged'
          and data->'ids'->>0 like 'backlog-%' order by seq`
      expect(purges.map((p) => p.n)).toEqual([1000, 1000, 500])
      // one transaction each: a backlog's purge never holds the host's lock past its bound
      expect(new Set(purges.map((p) => p.tx)).size).toBe(3)
      const [left] = await server.sql`select count(*)::int as n from horatio.microblog_item
        where host = ${NEWS} and id like 'backlog-%'`
      expect(left.n).toBe(0)
      expect(await verifyLog(server.sql, NEWS)).toMatchObject({ isGapless: true, brokenAt: undefined })
    })
  })

describeCleanup({ store: "pglite", bus: "memory" })
describe.skipIf(!hasServices)("on the real Postgres and NATS", () => {
  describeCleanup({ store: "postgres", bus: "nats" })
})
