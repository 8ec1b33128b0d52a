/**
 * A GET's input: its query string as an object of strings (`?id=a` → `{ id: "a" }`; a repeated
 * key keeps its last value). A %-escape that is not UTF-8 is refused, as such a body is:
 * URLSearchParams would turn it into U+FFFD and the handler would see input nobody sent.
 */

export type QueryInput =
  | { readonly ok: true; readonly input: Record<string, string> }
  | { readonly ok: false; readonly notUtf8: ReadonlyArray<string> }

const isUtf8 = (part: string): boolean => {
  try {
    decodeURIComponent(part.replaceAll("+", " "))
    return true
  } catch {
    return false
  }
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
