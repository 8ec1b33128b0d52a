/**
 * Request counters and latency sums in Prometheus text format, for `/metrics`, and who may read
 * them: anyone, or with HAMLET_METRICS_TOKEN set, a scraper presenting it as a bearer token.
 */
import { Config, Option, Redacted, Schema } from "effect"
import { bearerToken, isProjectKey } from "../admin/project-key.ts"

/** What a bearer token can carry (project-key.ts `bearerToken`): a token outside it never matches. */
const TOKEN_TEXT = /^[\x21-\x7e]*$/

/** What is wrong with HAMLET_METRICS_TOKEN as set, if anything (it is used trimmed). */
const tokenProblem = (raw: string): string | true => {
  const token = raw.trim()
  if (raw !== "" && token === "") {
    return "HAMLET_METRICS_TOKEN is only whitespace: set a token, or leave it empty to keep /metrics open"
  }
  return TOKEN_TEXT.test(token) || "HAMLET_METRICS_TOKEN must be printable ASCII without spaces"
}

/**
 * HAMLET_METRICS_TOKEN, without surrounding whitespace (an env file's line end): unset or empty
 * leaves `/metrics` open; one no client could send (a space inside), or only whitespace (meant
 * as a token, but it would leave `/metrics` open), stops the start.
 */
export const MetricsToken = Config.option(
  Config.schema(Schema.String.check(Schema.makeFilter(tokenProblem)), "HAMLET_METRICS_TOKEN"),
).pipe(
  Config.map((raw) => Option.isSome(raw) && raw.value !== "" ? Redacted.make(raw.value.trim()) : undefined),
)

/** Whether `authorization` lets its request read `/metrics` (compared in constant time). */
export const mayReadMetrics = (
  token: Redacted.Redacted<string> | undefined,
  authorization: string | null,
) => {
  if (token === undefined) return true
  const presented = bearerToken(authorization)
  return presented !== undefined && isProjectKey(presented, token)
}

const requests = new Map<string, number>()
let durationSum = 0
let durationCount = 0

const escape = (v: string) => v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")

export const recordRequest = (project: string, status: number, seconds: number): void => {
  const key = `project="${escape(project)}",status="${status}"`
  requests.set(key, (requests.get(key) ?? 0) + 1)
  durationSum += seconds
  durationCount++
}

export const renderMetrics = (
  gauges: Readonly<Record<string, number>>,
  counters: Readonly<Record<string, number>> = {},
): string => {
  const lines = [
    "# HELP hamlet_http_requests_total HTTP requests by project and status.",
    "# TYPE hamlet_http_requests_total counter",
    ...[...requests].map(([labels, n]) => `hamlet_http_requests_total{${labels}} ${n}`),
    "# HELP hamlet_http_request_duration_seconds Time from request to response.",
    "# TYPE hamlet_http_request_duration_seconds summary",
    `hamlet_http_request_duration_seconds_sum ${durationSum}`,
    `hamlet_http_request_duration_seconds_count ${durationCount}`,
  ]
  for (const [name, value] of Object.entries(gauges)) lines.push(`# TYPE ${name} gauge`, `${name} ${value}`)
  for (const [name, value] of Object.entries(counters)) {
    lines.push(`# TYPE ${name} counter`, `${name} ${value}`)
  }
  return lines.join("\n") + "\n"
}
