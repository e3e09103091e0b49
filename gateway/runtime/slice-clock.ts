import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Cuts long synchronous work (a reload's diff of 10 000 routes) into slices of about `sliceMs`, giving the event loop
 * a turn between them: `if (slices.due()) await slices.pause()` inside the loop.
 */
export class SliceClock {
  #sliceStart = performance.now();
  constructor(private readonly sliceMs = 5) {}

  due(): boolean {
    return performance.now() - this.#sliceStart >= this.sliceMs;
  }

  async pause(): Promise<void> {
    await nextTurn();
    this.#sliceStart = performance.now();
  }
}
