/**
 * Project-key checks for the admin API: the bearer token from `Authorization`, compared
 * with a project's key in constant time (sha256 digests of both, so lengths never leak,
 * then timingSafeEqual). Keys stay Redacted until the comparison and are never logged.
 */
import { Redacted } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"

const BEARER = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i

/** The token of an `Authorization: Bearer <token>` header; undefined when absent or malformed. */
export const bearerToken = (header: string | null): string | undefined => BEARER.exec(header ?? "")?.[1]

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

/** Whether `presented` is `key`, in time independent of where they differ. */
export const isProjectKey = (presented: string, key: Redacted.Redacted<string>): boolean =>
  timingSafeEqual(digest(presented), digest(Redacted.value(key)))
