/**
 * What a JSON value entering Hamlet (a request's input, an envelope from the bus) may hold
 * beyond being JSON: text Postgres can store — no NUL character, no lone UTF-16 surrogate
 * (jsonb and text refuse both, which surfaced as a 500 from deep in a write) — and nesting
 * at most `MAX_DEPTH` deep (encoding a 10,000-deep array overflowed the stack). Checked
 * without recursion, so a hostile value cannot overflow it either.
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

/**
 * The first problem found in `value`, with its dotted path; undefined when there is none.
 * `depth` is the nesting `value` itself counts as (-1 for a wrapper whose fields count from 0).
 */
export const wireValueIssue = (value: unknown, depth = 0): Issue | undefined => {
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
      value.forEach((item, i) => pending.push({ value: item, path: join(path, i), depth: depth + 1 }))
      continue
    }
    for (const [key, item] of Object.entries(value)) {
      const problem = textProblem(key)
      if (problem) return { path: join(path, key), message: `its key ${problem}` }
      pending.push({ value: item, path: join(path, key), depth: depth + 1 })
    }
  }
  return undefined
}
