/**
 * A GET's input: its query string as an object of strings (`?id=a` → `{ id: "a" }`; a repeated
 * key keeps its last value). A %-escape that is not UTF-8 is refused, as such a body is:
 * URLSearchParams would turn it into U+FFFD and the handler would see input nobody sent.
 */

export type QueryInput =
  | { readonly ok: true; readonly input: Record<string, string> }
  | { readonly ok: false; readonly notUtf8: ReadonlyArray<string> }

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** Runs of %XX escapes: a `%` not followed by two hex digits is kept as typed (as URLSearchParams does). */
const ESCAPES = /(?:%[0-9A-Fa-f]{2})+/g

/** Whether every run of %-escapes in `part` decodes as UTF-8. */
const isUtf8 = (part: string): boolean => {
  for (const [run] of part.matchAll(ESCAPES)) {
    const bytes = Uint8Array.from(run.slice(1).split("%"), (hex) => parseInt(hex, 16))
    try {
      utf8.decode(bytes)
    } catch {
      return false
    }
  }
  return true
}

export const queryInput = (url: URL): QueryInput => {
  const notUtf8: Array<string> = []
  if (url.search.includes("%")) {
    for (const pair of url.search.slice(1).split("&")) {
      if (isUtf8(pair)) continue
      const [key] = new URLSearchParams(pair).keys()
      notUtf8.push(key ?? "")
    }
  }
  return notUtf8.length > 0
    ? { ok: false, notUtf8 }
    : { ok: true, input: Object.fromEntries(url.searchParams) }
}
