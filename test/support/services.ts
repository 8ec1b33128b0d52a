/**
 * Which real services the suite may use. Locally a missing Postgres or NATS skips its
 * suites with a reason; with HAMLET_REQUIRE_SERVICES=1 (set by .ci/run) it fails instead.
 */
import { isAccepting } from "../../src/platform/tcp-probe.ts"

export const DATABASE_URL = process.env.HAMLET_TEST_DATABASE_URL ?? process.env.DATABASE_URL ??
  "postgres://postgres@127.0.0.1:5432/test"
export const NATS_URL = process.env.HAMLET_TEST_NATS_URL ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222"
export const isServiceRequired = process.env.HAMLET_REQUIRE_SERVICES === "1"

/**
 * Resolves whether the service is there. When it is not and services are required, throws
 * so the suite fails; otherwise the caller skips with `describe.skipIf(!available)`.
 */
export const checkService = async (name: "postgres" | "nats"): Promise<boolean> => {
  const ok = name === "postgres" ? await isAccepting(DATABASE_URL, 5432) : await isAccepting(NATS_URL, 4222)
  if (!ok && isServiceRequired) {
    throw new Error(`${name} is required (HAMLET_REQUIRE_SERVICES=1) but unreachable`)
  }
  if (!ok) console.warn(`skipping ${name} suites: ${name} is not reachable`)
  return ok
}

/** A short unique suffix so parallel runs never share databases or subjects. */
export const uniqueSuffix = (): string =>
  `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
