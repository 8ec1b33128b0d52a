/**
 * Announcing committed events — a command batch's, and Hamlet's own (purges, session expiry) —
 * on `<root>.evt.<project>.<hostToken>.<EventType>` as `{ host, seq, stream, type, data, recordedAt }`:
 * a notification. The log is the truth, so an announcement the bus cannot take is dropped,
 * never a failure of the write.
 */
import { Effect } from "effect"
import type { Bus } from "./bus.ts"
import { encodeJson } from "./envelope.ts"
import { eventSubject } from "./subjects.ts"
import type { StoredEvent } from "../store/event-log.ts"

export const announceEvents = (
  bus: Bus["Service"],
  project: string,
  events: ReadonlyArray<StoredEvent>,
): Effect.Effect<void> =>
  Effect.forEach(events, (e) =>
    bus.publish(
      eventSubject(project, e.host, e.type),
      encodeJson({
        host: e.host,
        seq: e.seq,
        stream: e.stream,
        type: e.type,
        data: e.data,
        recordedAt: e.recordedAt.toISOString(),
      }),
    ).pipe(Effect.ignore), { discard: true })
