/**
 * Imported first by the server's entry point, before anything loads `effect`: Effect looks
 * for node:async_hooks' AsyncResource when its module loads and, when found, wraps every
 * fiber resumption in one (so AsyncLocalStorage values survive async boundaries). Hamlet
 * keeps no AsyncLocalStorage state, and under Deno each wrap costs: measured here, ~6% of
 * the read path's CPU. Hiding the module while Effect loads turns the wrapping off.
 * `restoreAsyncHooks` puts the lookup back once the imports are done.
 */
type GetBuiltinModule = (id: string) => unknown
const nodeProcess = (globalThis as { process?: { getBuiltinModule?: GetBuiltinModule } }).process
const original = nodeProcess?.getBuiltinModule

if (nodeProcess && original && Deno.env.get("HAMLET_ASYNC_CONTEXT") !== "1") {
  nodeProcess.getBuiltinModule = (id: string) =>
    id === "node:async_hooks" || id === "async_hooks" ? undefined : original.call(nodeProcess, id)
}

export const restoreAsyncHooks = (): void => {
  if (nodeProcess && original) nodeProcess.getBuiltinModule = original
}
