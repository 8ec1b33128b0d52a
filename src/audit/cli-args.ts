/**
 * The replay CLI's flags, parsed and checked before anything touches the store: one mode
 * (list, --verify, --rebuild, --at, --verify-file), a host for every mode but the file
 * check, and ranges only where they mean something.
 */
import { Schema } from "effect"
import { parseArgs } from "node:util"
import { normaliseHost } from "../ingress/host.ts"
import { type LogPoint, parseLogPoint } from "./at.ts"
import { type EventRange, isWholeLog, parseRange } from "./event-range.ts"

export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", { message: Schema.String }) {}

export const Format = Schema.Literals(["table", "ndjson"])
export type Format = typeof Format.Type

export type CliCommand =
  | { readonly mode: "list"; readonly host: string; readonly range: EventRange }
  | { readonly mode: "verify"; readonly host: string; readonly chainOnly: boolean }
  | { readonly mode: "rebuild"; readonly host: string }
  | { readonly mode: "at"; readonly host: string; readonly point: LogPoint }
  /** `fromSeq`: the seq the export was taken from, where the file must start (1: the whole log). */
  | { readonly mode: "verify-file"; readonly path: string; readonly fromSeq: number | undefined }
  | { readonly mode: "help" }

export interface CliOptions {
  readonly command: CliCommand
  readonly format: Format
  readonly configPath: string
}

export const USAGE = `deno task replay --host <host> [options]

  (no mode)            print the host's events in seq order
  --verify             check the hash chain and seq continuity, rebuild the projections
                       into a scratch schema and diff them against the live tables
  --chain-only         with --verify: check the chain only, skip the projection rebuild
  --rebuild            repair the host's live read tables from its log (atomic)
  --at <seq|time>      print the read tables as they were at that point of the log
  --verify-file <path> check the chain of an NDJSON export offline (no --host, no store);
                       with --from <seq>, the seq it was taken from: the file must start
                       there (--from 1: the whole log, from the genesis hash)

  --format table|ndjson        output (default table)
  --from <seq> --to <seq>      narrow the listing by seq (inclusive)
  --since <time> --until <time> narrow it by recorded time (ISO-8601)
  --stream <id>                one stream (aggregate) only
  --config <path>              config.json listing the projects (default HAMLET_CONFIG or ./config.json)

Store: DATABASE_URL, else the embedded PGlite under HAMLET_DATA (default ./.hamlet) with the
server stopped. Exit: 0 ok, 1 broken chain / drift / bad file, 2 usage or store error,
3 a partial file without prevHash (exported before lines carried it): its first event unchecked.`

const fail = (message: string): never => {
  throw new UsageError({ message })
}

/** Parses argv; throws UsageError (or BadRange) with a message for the user. */
export const parseCli = (argv: ReadonlyArray<string>, env: { readonly configPath?: string }): CliOptions => {
  const { values } = (() => {
    try {
      return parseArgs({
        args: [...argv],
        strict: true,
        allowPositionals: false,
        options: {
          host: { type: "string" },
          format: { type: "string", default: "table" },
          from: { type: "string" },
          to: { type: "string" },
          since: { type: "string" },
          until: { type: "string" },
          stream: { type: "string" },
          verify: { type: "boolean", default: false },
          rebuild: { type: "boolean", default: false },
          "chain-only": { type: "boolean", default: false },
          at: { type: "string" },
          "verify-file": { type: "string" },
          config: { type: "string" },
          help: { type: "boolean", short: "h", default: false },
        },
      })
    } catch (e) {
      return fail((e as Error).message)
    }
  })()
  if (!Schema.is(Format)(values.format)) fail(`--format must be table or ndjson`)
  const format = values.format as Format
  const configPath = values.config ?? env.configPath ?? "./config.json"
  if (values.help) return { command: { mode: "help" }, format, configPath }
  const modes = [values.verify, values.rebuild, values.at !== undefined, values["verify-file"] !== undefined]
  if (modes.filter(Boolean).length > 1) fail("choose one of --verify, --rebuild, --at, --verify-file")
  const range = parseRange(values)
  if (values["verify-file"] !== undefined) {
    if (values.host) fail("--verify-file reads the host from the file; drop --host")
    // a file is checked whole: only where it starts can be stated, no other bound is applied
    if (!isWholeLog({ ...range, fromSeq: undefined })) {
      fail("with --verify-file, only --from (the seq the export was taken from) applies")
    }
    return {
      command: { mode: "verify-file", path: values["verify-file"], fromSeq: range.fromSeq },
      format,
      configPath,
    }
  }
  if (!values.host) fail("--host is required")
  const host = normaliseHost(values.host) ??
    fail(`--host ${JSON.stringify(values.host)} is not a valid hostname`)
  if (values["chain-only"] && !values.verify) fail("--chain-only goes with --verify")
  const isListing = !values.verify && !values.rebuild && values.at === undefined
  if (!isListing && !isWholeLog(range)) {
    fail(
      "--from/--to/--since/--until/--stream narrow the listing only; --verify, --rebuild and --at cover the whole log",
    )
  }
  const command: CliCommand = values.verify
    ? { mode: "verify", host, chainOnly: values["chain-only"] }
    : values.rebuild
    ? { mode: "rebuild", host }
    : values.at !== undefined
    ? { mode: "at", host, point: parseLogPoint(values.at) }
    : { mode: "list", host, range }
  return { command, format, configPath }
}
