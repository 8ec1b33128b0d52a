/**
 * What a JSON value entering Hamlet (a request's input, an envelope from the bus) may hold
 * beyond being JSON: text Postgres can store — no NUL character, no lone UTF-16 surrogate
 * (jsonb and text refuse both, which surfaced as a 500 from deep in a write) — and nesting
 * at most `MAX_DEPTH` deep (encoding a 10,000-deep array overflowed the stack). Checked
 * without recursion, so a hostile value cannot overflow it either. The same walk turns each
 * -0 into 0: JSON.parse gives -0 for `-0`, `-0.0` or `-1e-400`, and JSON.stringify writes it
 * as 0, so a handler would see a number the log never keeps.
 */
import type { Issue } from "./envelope.ts"

export const MAX_DEPTH = 64

const textProblem = (text: string): string | undefined =>
  text.includes("\u0000")
    ? "contains a NUL character, which cannot be stored"
    : text.isWellFormed()
    ? undefined
    : "contains a lone surrogate: not valid Unicode"

const join = (path: string, key: string | number) => path === "" ? String(key) : `${path}.${key}`

/** Negative zero, which JSON text can spell but not keep. */
const isNegativeZero = (value: unknown): boolean => value === 0 && Object.is(value, -0)

/**
 * The first problem found in `value`, with its dotted path; undefined when there is none. On the
 * way, each -0 inside `value` (a parsed JSON value, owned by the caller) becomes 0, in place.
 * `depth` is the nesting `value` itself counts as (-1 for a wrapper whose fields count from 0).
 */
export const checkWireValue = (value: unknown, depth = 0): Issue | undefined => {
  const pending: Array<{ value: unknown; path: string; depth: number }> = [{ value, path: "", depth }]
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { value, path, depth } = next
    if (typeof value === "string") {
      const problem = textProblem(value)
      if (problem) return { path, message: problem }
      continue
    }
    if (value === null || typeof value !== "object") continue
    if (depth >= MAX_DEPTH) return { path, message: `nested deeper than ${MAX_DEPTH} levels` }
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        if (isNegativeZero(item)) value[i] = 0
        else pending.push({ value: item, path: join(path, i), depth: depth + 1 })
      })
      continue
    }
    const record = value as Record<string, unknown>
    for (const [key, item] of Object.entries(record)) {
      const problem = textProblem(key)
      if (problem) return { path: join(path, key), message: `its key ${problem}` }
      if (isNegativeZero(item)) record[key] = 0
      else pending.push({ value: item, path: join(path, key), depth: depth + 1 })
    }
  }
  return undefined
}
