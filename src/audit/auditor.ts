/**
 * The Auditor service: the audit operations bound to one Database and the projects of one
 * config.json — list/export a host's log, verify it, repair its read tables, show them at
 * a point. The CLI and the tests build it over whichever store they use.
 */
import { Context, Effect, Layer } from "effect"
import type { ConfigError } from "../config/config.ts"
import type { LoadedProject, ProjectLoadError } from "../projects/loader.ts"
import { Database, type DatabaseError } from "../store/database.ts"
import { reserveConnection } from "../store/reserved-connection.ts"
import { type AtReport, type LogPoint, type RowSink, stateAt } from "./at.ts"
import type { LinkedEvent } from "./event-line.ts"
import type { EventRange } from "./event-range.ts"
import { eventCursor } from "./export.ts"
import { HostNotFound, hostProject, loadProjects, ProjectNotLoaded } from "./host-owner.ts"
import { repairHost, type RepairReport } from "./repair.ts"
import { verifyHost, type VerifyReport } from "./verify.ts"

export type AuditError = DatabaseError | HostNotFound | ProjectNotLoaded

export class Auditor extends Context.Service<Auditor, {
  /**
   * The host's events in seq order, each with the hash it links to, in batches, through a cursor
   * on a reserved connection.
   */
  readonly events: (host: string, range: EventRange) => AsyncGenerator<ReadonlyArray<LinkedEvent>>
  /** Fails with HostNotFound when the host has no log. */
  readonly checkHost: (host: string) => Effect.Effect<string, DatabaseError | HostNotFound>
  readonly verify: (
    host: string,
    options?: { readonly chainOnly?: boolean },
  ) => Effect.Effect<VerifyReport, AuditError>
  readonly repair: (host: string) => Effect.Effect<RepairReport, AuditError>
  readonly stateAt: (host: string, point: LogPoint, sink: RowSink) => Effect.Effect<AtReport, AuditError>
  readonly project: (host: string) => Effect.Effect<LoadedProject, AuditError>
}>()("hamlet/Auditor") {}

export const AuditorLive = (
  configPath: string,
): Layer.Layer<Auditor, ConfigError | ProjectLoadError, Database> =>
  Layer.effect(
    Auditor,
    Effect.gen(function* () {
      const { sql } = yield* Database
      const projects = yield* loadProjects(configPath)
      const project = (host: string) =>
        hostProject(sql, host).pipe(
          Effect.flatMap((name) => {
            const loaded = projects.get(name)
            return loaded
              ? Effect.succeed(loaded)
              : Effect.fail(new ProjectNotLoaded({ host, project: name }))
          }),
        )
      // a read-only snapshot: one consistent view, and the cursor's portal lives in a transaction;
      // a lost connection is not released, a rollback left unanswered closes it (reserved-connection.ts)
      async function* events(host: string, range: EventRange) {
        const reserved = await reserveConnection(sql, "begin isolation level repeatable read read only")
        try {
          await reserved.opened
          yield* eventCursor(reserved.sql, host, range, { links: true })
        } finally {
          await reserved.finish("rollback")
        }
      }
      return {
        events,
        checkHost: (host) => hostProject(sql, host),
        project,
        verify: (host, options) => Effect.flatMap(project(host), (p) => verifyHost(sql, p, host, options)),
        repair: (host) => Effect.flatMap(project(host), (p) => repairHost(sql, p, host)),
        stateAt: (host, point, sink) =>
          Effect.flatMap(project(host), (p) => stateAt(sql, p, host, point, sink)),
      }
    }),
  )

export { HostNotFound, ProjectNotLoaded }
