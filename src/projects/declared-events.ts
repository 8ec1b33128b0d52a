/**
 * A project's declared events (`defineProject({ events })`): when a project lists them, that list
 * is the whole vocabulary of its log — a projection of an event not in it is a load error, and a
 * command emitting one is refused (500; nothing written). A project that lists none may emit any.
 */
import type { EventDef } from "./event.ts"
import type { Projection } from "./projection.ts"

/** Event types a project declared, or `undefined` when it declared none. */
export type DeclaredEvents = ReadonlySet<string> | undefined

/** The declared event types, or why `events` and `projections` do not fit together. */
export const declaredEventsOf = (
  events: ReadonlyArray<EventDef> | undefined,
  projections: ReadonlyArray<Projection>,
): { readonly declared: DeclaredEvents } | { readonly problem: string } => {
  if (events === undefined) return { declared: undefined }
  const byType = new Map<string, EventDef>()
  for (const event of events) {
    const known = byType.get(event.type)
    if (known && known !== event) {
      return { problem: `events declares ${event.type} twice, as two different events` }
    }
    byType.set(event.type, event)
  }
  const undeclared = projections.find((p) => !byType.has(p.eventType))
  if (undeclared) {
    return { problem: `a projection of ${undeclared.eventType}, which events does not declare` }
  }
  return { declared: new Set(byType.keys()) }
}

/** Why `type` may not be emitted, or `undefined` when it may. */
export const undeclaredEmit = (declared: DeclaredEvents, handler: string, type: string): string | undefined =>
  declared === undefined || declared.has(type)
    ? undefined
    : `${handler} emitted ${type}, which project.ts does not declare in events`
