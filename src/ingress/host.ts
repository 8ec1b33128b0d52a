/**
 * Host header normalisation (DESIGN.md §1): lower-case, strip the port, strip one
 * trailing dot, punycode → ASCII, then RFC 1123 validation. Returns undefined when the
 * header cannot be a hostname, so the caller answers 400.
 */

const FATAL_UTF8 = new TextDecoder("utf-8", { fatal: true })

/** Whether `text` is all ASCII (a Host header or a name in Unicode is not). */
export const isAscii = (text: string): boolean => !/[\u0080-\uffff]/.test(text)

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/** Whether `host` is an already-normalised RFC 1123 hostname. */
export const isValidHostname = (host: string): boolean =>
  host.length > 0 && host.length <= 253 && host.split(".").every((label) => LABEL.test(label))

export const normaliseHost = (header: string | null | undefined): string | undefined => {
  if (!header) return undefined
  let host = header.trim().toLowerCase()
  if (host.startsWith("[")) return undefined // IP literals are not tenants
  const colon = host.lastIndexOf(":")
  if (colon !== -1) {
    const port = host.slice(colon + 1)
    if (!/^\d{0,5}$/.test(port)) return undefined // (RFC 9110: a port may be empty)
    host = host.slice(0, colon)
  }
  if (host.endsWith(".")) host = host.slice(0, -1)
  if (host.length === 0 || /[\s/\\?#@%]/.test(host)) return undefined
  if (/[^ -~]/.test(host)) {
    // the URL parser applies UTS #46 (IDNA) mapping and punycode; it rejects bad labels
    try {
      host = new URL(`http://${host}/`).hostname
    } catch {
      return undefined
    }
  }
  return isValidHostname(host) ? host : undefined
}

/**
 * The Host header, or for HTTP/2 the request's `:authority`, which Deno gives as no `host` header
 * but as the URL's host. An HTTP/1 request without Host gets the URL `http://localhost:<port>/…`
 * from Deno: that stays no host (a 400), as HTTP/1.1 requires.
 */
export const hostHeaderOf = (request: Request, url: URL): string | null =>
  request.headers.get("host") ?? (url.hostname === "localhost" ? null : url.host)

/**
 * A Host header as the ingress receives it: header values arrive as bytes, one character each
 * (ISO-8859-1), so a name a client sent in UTF-8 (`bücher.example`, `blog。example。com`) is decoded
 * again before it is normalised; bytes that are not UTF-8 cannot be a name (undefined → 400).
 */
export const normaliseHostHeader = (header: string | null): string | undefined => {
  if (!header || isAscii(header)) return normaliseHost(header)
  if (/[\u0100-\uffff]/.test(header)) return undefined // not a byte string: not what came over the wire
  try {
    return normaliseHost(FATAL_UTF8.decode(Uint8Array.from(header, (c) => c.charCodeAt(0))))
  } catch {
    return undefined
  }
}

/**
 * Whether a request in absolute form (`GET http://other.example/… HTTP/1.1`) names another host
 * than its Host header: RFC 9112 has an origin server go by the target then, a proxy or a
 * firewall in front may have gone by the header, so such a request is refused rather than routed
 * to either. Deno builds the URL of any other request from the Host header itself — a header in
 * UTF-8 decoded and mapped to its ASCII (punycode) form, which normalises to the same host.
 */
export const targetNamesOtherHost = (url: URL, header: string, host: string): boolean =>
  // per request: the URL Deno built from an ASCII header spells it alike, no second normalising
  url.host !== header && normaliseHost(url.host) !== host
