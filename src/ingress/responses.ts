/** JSON responses of the HTTP contract; error bodies are `{error:{code,message,issues?}}`. */
import type { ReplyError } from "../bus/envelope.ts"
import { HTTP_STATUS } from "../errors.ts"

export const jsonResponse = (status: number, body: unknown, headers: HeadersInit = {}): Response =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  })

/**
 * An error reply as HTTP; `status` overrides the code's default (413, 405, 421…). A code outside
 * the contract (a foreign responder on a host's subject) is a 500, never a 200.
 */
export const errorResponse = (error: ReplyError, status = HTTP_STATUS[error.code] ?? 500): Response =>
  jsonResponse(status, { error }, status === 503 ? { "retry-after": "1" } : {})

/** 401, naming the bearer realm whose token the caller must present (`WWW-Authenticate`). */
export const unauthorizedResponse = (message: string, realm: string): Response => {
  const response = errorResponse({ code: "unauthorized", message }, 401)
  response.headers.set("www-authenticate", `Bearer realm="${realm}"`)
  return response
}

/** 405, with the methods the path allows (`Allow`). */
export const notAllowed = (message: string, allow: string): Response => {
  const response = errorResponse({ code: "bad_request", message }, 405)
  response.headers.set("allow", allow)
  return response
}

/** 405 naming the method, with the methods the route allows. */
export const methodNotAllowed = (method: string, allow: string, where = ""): Response =>
  notAllowed(`method ${method} is not allowed${where}`, allow)
