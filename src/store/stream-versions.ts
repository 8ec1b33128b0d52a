/**
 * Stream versions a command batch places, layered over what is known below it: the
 * committed versions of the host, or the layer of a batch still committing. A layer is
 * merged into the committed versions when its batch commits and simply dropped when it
 * does not, so a failed batch never leaves a guessed version behind.
 */

/** Stream → last version, as `placeEvents` consults and updates it (a Map is one). */
export interface StreamVersions {
  get(stream: string): number | undefined
  set(stream: string, version: number): unknown
}

export class VersionLayer implements StreamVersions {
  readonly #own = new Map<string, number>()

  constructor(private below: StreamVersions) {}

  get(stream: string): number | undefined {
    return this.#own.get(stream) ?? this.below.get(stream)
  }

  set(stream: string, version: number): void {
    this.#own.set(stream, version)
  }

  /**
   * Its batch committed: its versions join `committed`, and the layers above it read through
   * to `committed` from now on (so chains of layers never grow past the batches in flight).
   */
  commitInto(committed: Map<string, number>): void {
    for (const [stream, version] of this.#own) committed.set(stream, version)
    this.#own.clear()
    this.below = committed
  }
}
