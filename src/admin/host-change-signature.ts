/**
 * Signed host commands on `<root>.ctl.hosts`: an `add`/`remove` carries `at` (epoch milliseconds)
 * and `signature`, the lowercase hex HMAC-SHA256 of `${root}\n${action}\n${project}\n${host}\n${at}` keyed
 * with the project key. Only a holder of the key can change a project's hosts over NATS; the key
 * itself never travels, and a message more than a minute from the node's clock is refused.
 */
import { Clock, Effect, Redacted, Schema } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"
import { SUBJECT_ROOT } from "../bus/subjects.ts"

/** What a host command changes: the part of the message that is signed, with `at`. */
export const HostCommandFields = Schema.Struct({
  action: Schema.Literals(["add", "remove"]),
  project: Schema.String,
  host: Schema.String,
})
export type HostCommandFields = typeof HostCommandFields.Type

/**
 * A host command as it arrives. `at` and `signature` are optional here so that an unsigned
 * command is refused as unauthorized, not as malformed; `at` is an integer so that every
 * language writes it in the signed text the same way.
 */
export const HostCommand = Schema.Struct({
  ...HostCommandFields.fields,
  at: Schema.optional(Schema.Int),
  signature: Schema.optional(Schema.String),
})
export type HostCommand = typeof HostCommand.Type

/** A host command ready to publish. */
export interface SignedHostCommand extends HostCommandFields {
  readonly at: number
  readonly signature: string
}

/** How far a command's `at` may be from the verifying node's clock, either way. */
export const MAX_CLOCK_SKEW_MS = 60_000

/**
 * A host command refused, with the reply's code: `unauthorized` (no key to check it with, no or a
 * wrong signature, a stale `at`), `conflict` (applied already, or a later one: a replay; a folder
 * host) or `not_found` (a remove of a host the project has no run-time row for).
 */
export class HostCommandRefused extends Schema.TaggedError<HostCommandRefused>()("HostCommandRefused", {
  code: Schema.Literals(["unauthorized", "conflict", "not_found"]),
  message: Schema.String,
}) {}

const SIGNATURE = /^[0-9a-f]{64}$/

/**
 * The signed text: one field a line, so that no two commands sign the same text; the subject root
 * first, so that a command for one fleet is no command for another sharing the NATS and the key.
 */
const signedText = (command: HostCommandFields, at: number, root: string) =>
  `${root}\n${command.action}\n${command.project}\n${command.host}\n${at}`

const hmac = (command: HostCommandFields, at: number, key: string, root: string) =>
  createHmac("sha256", key).update(signedText(command, at, root), "utf8").digest()

/**
 * The message to publish on `<root>.ctl.hosts` to add or remove a host of a project without
 * going through the admin API: the command, `at`, and its signature with the project key.
 * Sign each change when it is sent, a retry too: it is refused once `at` is more than a minute old,
 * and when a change of the host with the same or a later `at` was applied (store/host-commands.ts).
 *
 * @example
 * ```ts
 * import { connect } from "@nats-io/transport-node"
 * import { signHostChange } from "../../mod.ts"
 *
 * const nc = await connect({ servers: "127.0.0.1:4222" })
 * const change = signHostChange(
 *   { action: "add", project: "horatio", host: "guest.example.com" },
 *   Deno.env.get("HAMLET_PROJECT_KEY_HORATIO") ?? "",
 * )
 * const reply = await nc.request("hamlet.ctl.hosts", JSON.stringify(change), { timeout: 10_000 })
 * console.log(reply.json()) // { ok: true, output: { host: "guest.example.com", served: true } }
 * ```
 */
export const signHostChange = (
  command: HostCommandFields,
  projectKey: string | Redacted.Redacted<string>,
  at: number = Date.now(),
  root: string = SUBJECT_ROOT,
): SignedHostCommand => {
  const key = Redacted.isRedacted(projectKey) ? Redacted.value(projectKey) : projectKey
  const { action, project, host } = command
  return { action, project, host, at, signature: hmac(command, at, key, root).toString("hex") }
}

/**
 * Succeeds with its `at` when `command` is signed with `projectKey` and that is within
 * MAX_CLOCK_SKEW_MS of this node's clock. A project without a key has host changes over NATS disabled, not open. The
 * signature is compared in constant time; neither it nor the key is ever put in the error.
 */
export const verifyHostCommand = (
  command: HostCommand,
  projectKey: Redacted.Redacted<string> | undefined,
): Effect.Effect<number, HostCommandRefused> =>
  Effect.gen(function* () {
    const refuse = (message: string) => Effect.fail(new HostCommandRefused({ code: "unauthorized", message }))
    if (!projectKey) return yield* refuse("host changes over NATS are disabled for a project without a key")
    const { at, signature } = command
    if (at === undefined || signature === undefined) {
      return yield* refuse("a host change must be signed with the project key (at, signature)")
    }
    const now = yield* Clock.currentTimeMillis
    if (Math.abs(now - at) > MAX_CLOCK_SKEW_MS) {
      return yield* refuse(
        `the host change is stale: its at is more than ${MAX_CLOCK_SKEW_MS / 1000} s from this node's clock`,
      )
    }
    const expected = hmac(command, at, Redacted.value(projectKey), SUBJECT_ROOT)
    // its shape is public (64 hex digits): checking it first says nothing about the key
    const isSigned = SIGNATURE.test(signature) && timingSafeEqual(Buffer.from(signature, "hex"), expected)
    if (!isSigned) return yield* refuse("the host change's signature is not valid")
    return at
  })
