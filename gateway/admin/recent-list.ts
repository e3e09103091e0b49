/** The last `capacity` items pushed, oldest first: history for the admin API without unbounded growth. */
export class RecentList<T> {
  readonly #items: T[] = [];

  constructor(readonly capacity: number) {}

  push(item: T): void {
    this.#items.push(item);
    if (this.#items.length > this.capacity) this.#items.splice(0, this.#items.length - this.capacity);
  }

  items(): readonly T[] {
    return [...this.#items];
  }
}
