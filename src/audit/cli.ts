/**
 * `deno task replay`: list, export, verify, repair and time-travel a host's event log, or
 * verify an NDJSON export offline. See USAGE in cli-args.ts. Exit codes: 0 ok, 1 a broken
 * chain, drift, an event its Schema no longer reads or a bad file (each finding printed), 2
 * usage or store errors.
 */
// first: must run before anything imports effect
import { restoreAsyncHooks } from "../platform/no-async-context.ts"
import { Cause, Effect, Layer } from "effect"
import { Auditor, AuditorLive } from "./auditor.ts"
import { type CliOptions, parseCli, USAGE } from "./cli-args.ts"
import { storeFromEnv } from "./connect.ts"
import { isFirstUnchecked, isIntact } from "./chain.ts"
import { encodeEventLine } from "./event-line.ts"
import { chainLines, driftLines, EVENT_TABLE_HEADER, eventTableRow, fileLines, stateLines } from "./report.ts"
import { isFileIntact, verifyFile } from "./verify-file.ts"
import { isVerified, type VerifyReport } from "./verify.ts"

restoreAsyncHooks()

const encoder = new TextEncoder()

/** Writes all of `text` to stdout, waiting for the pipe (backpressure). */
const write = async (text: string) => {
  let bytes = encoder.encode(text)
  while (bytes.length > 0) bytes = bytes.subarray(await Deno.stdout.write(bytes))
}
const print = (lines: ReadonlyArray<string>) =>
  Effect.promise(() => write(lines.map((l) => `${l}\n`).join("")))
const printJson = (value: unknown) => print([JSON.stringify(value)])

const rate = (events: number, ms: number) => `${Math.round(events / Math.max(ms, 1) * 1000)} events/s`
const timingLine = ({ chain, replayed, timings }: VerifyReport) =>
  `timing: chain ${timings.chainMs.toFixed(0)} ms (${rate(chain.events, timings.chainMs)}), replay ${
    timings.replayMs.toFixed(0)
  } ms (${rate(replayed.events, timings.replayMs)}), diff ${timings.diffMs.toFixed(0)} ms`

const runWithStore = (options: CliOptions) =>
  Effect.gen(function* () {
    const auditor = yield* Auditor
    const { command, format } = options
    switch (command.mode) {
      case "list": {
        yield* auditor.checkHost(command.host)
        yield* Effect.promise(async () => {
          if (format === "table") await write(`${EVENT_TABLE_HEADER}\n`)
          for await (const batch of auditor.events(command.host, command.range)) {
            await write(
              batch.map((e) => format === "ndjson" ? encodeEventLine(e) : `${eventTableRow(e)}\n`).join(""),
            )
          }
        })
        return 0
      }
      case "verify": {
        const report = yield* auditor.verify(command.host, { chainOnly: command.chainOnly })
        if (format === "ndjson") yield* printJson(report)
        else {
          yield* print([
            ...chainLines(report.chain),
            ...(report.projections
              ? driftLines(report.projections)
              : [`projections: not checked (${report.replayError ?? "--chain-only"})`]),
            timingLine(report),
          ])
        }
        return isVerified(report) ? 0 : 1
      }
      case "rebuild": {
        const report = yield* auditor.repair(command.host)
        if (format === "ndjson") yield* printJson(report)
        else if (!isIntact(report.chain)) {
          yield* print([...chainLines(report.chain), "rebuild: refused — the log itself is broken"])
        } else {
          yield* print([
            ...chainLines(report.chain),
            ...driftLines(report.repaired, "repaired"),
            `rebuild: ${report.replayed.events} events replayed; ${report.tables.length} tables repaired for ${report.host}`,
          ])
        }
        return isIntact(report.chain) ? 0 : 1
      }
      case "at": {
        if (format === "table") yield* print([`# ${command.host} as of ${JSON.stringify(command.point)}`])
        const report = yield* auditor.stateAt(command.host, command.point, (table, rows) =>
          write(
            format === "ndjson"
              ? rows.map((row) => `${JSON.stringify({ table, row })}\n`).join("")
              : stateLines(table, rows).map((l) => `${l}\n`).join(""),
          ))
        if (format === "table") {
          const end = report.requestedSeq > report.seq
            ? `, where the log ends (asked for ${report.requestedSeq})`
            : ""
          yield* print([`# state at seq ${report.seq}${end} (${report.replayed.events} events)`])
        }
        return 0
      }
      case "verify-file":
      case "help":
        return 2
    }
  })

export const main = (argv: ReadonlyArray<string>): Effect.Effect<number> =>
  Effect.gen(function* () {
    const options = parseCli(argv, { configPath: Deno.env.get("HAMLET_CONFIG") })
    const { command } = options
    if (command.mode === "help") {
      yield* print([USAGE])
      return 0
    }
    if (command.mode === "verify-file") {
      const report = yield* verifyFile(command.path, { fromSeq: command.fromSeq })
      if (options.format === "ndjson") yield* printJson(report)
      else yield* print(fileLines(report))
      if (!isFileIntact(report)) return 1
      // nothing found wrong, but not all of it could be checked: not a pass for a script
      return isFirstUnchecked(report) ? 3 : 0
    }
    const store = yield* storeFromEnv({
      databaseUrl: Deno.env.get("DATABASE_URL"),
      dataDir: Deno.env.get("HAMLET_DATA"),
    })
    return yield* runWithStore(options).pipe(
      Effect.provide(AuditorLive(options.configPath).pipe(Layer.provide(store.layer))),
    )
  }).pipe(
    Effect.catchCause((cause) => {
      const failure = cause.reasons.find(Cause.isFailReason)
      const error = failure?.error ?? cause.reasons.find(Cause.isDieReason)?.defect
      const tag = (error as { _tag?: string })?._tag
      const message = (error as Error)?.message ?? Cause.pretty(cause)
      return Effect.sync(() => {
        console.error(`replay: ${message}`)
        if (tag === "UsageError" || tag === "BadRange") console.error(`\n${USAGE}`)
        // the log holds what the project's code cannot read: a finding about the log (1)
        return tag === "EventDataMismatch" ? 1 : 2
      })
    }),
  )

if (import.meta.main) {
  Deno.exit(await Effect.runPromise(main(Deno.args)))
}
