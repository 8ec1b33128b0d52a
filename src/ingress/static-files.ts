/**
 * Static files of a host, from its folder (`index.html` for `/`). Paths are resolved and
 * checked to stay inside the folder: `..`, encoded slashes and symlinks out are refused.
 */
import { realpath } from "node:fs/promises"
import { extname, resolve, sep } from "node:path"

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
}

/** The file for `pathname` inside `root`, or undefined when none may be served. */
export const resolveStaticPath = async (root: string, pathname: string): Promise<string | undefined> => {
  let decoded: string
  try {
    decoded = decodeURIComponent(pathname)
  } catch {
    return undefined
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return undefined
  const relative = decoded.endsWith("/") ? `${decoded}index.html` : decoded
  const base = await realpath(root).catch(() => undefined)
  if (!base) return undefined
  const candidate = resolve(base, `.${relative}`)
  const real = await realpath(candidate).catch(() => undefined)
  if (!real || (real !== base && !real.startsWith(base + sep))) return undefined
  if (real.split(sep).some((part) => part === "host.json")) return undefined
  return real
}

/** Whether `pathname` names a file that a GET would serve. */
export const isStaticFile = async (root: string, pathname: string): Promise<boolean> => {
  const path = await resolveStaticPath(root, pathname)
  return path !== undefined && (await Deno.stat(path).catch(() => undefined))?.isFile === true
}

export const serveStatic = async (
  root: string,
  pathname: string,
  isHead: boolean,
): Promise<Response | undefined> => {
  const path = await resolveStaticPath(root, pathname)
  if (!path) return undefined
  try {
    const file = await Deno.open(path, { read: true })
    const info = await file.stat()
    if (!info.isFile) {
      file.close()
      return undefined
    }
    const headers = {
      "content-type": CONTENT_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream",
      "content-length": String(info.size),
    }
    if (isHead) {
      file.close()
      return new Response(null, { status: 200, headers })
    }
    return new Response(file.readable, { status: 200, headers })
  } catch {
    return undefined
  }
}
