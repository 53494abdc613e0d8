/**
 * Values one side of a test records as they arrive and the other side waits for, in lockstep. A
 * wait not met by its deadline fails, naming what it waited for: deadlines are generous, they only
 * turn a deadlock into a readable failure.
 */
export class Arrivals<T> {
  readonly values: T[] = [];
  readonly #waiting = new Set<() => void>();

  push(value: T): void {
    this.values.push(value);
    for (const wake of [...this.#waiting]) wake();
  }

  /** The first arrived value that `match`es, as soon as there is one. */
  until(match: (value: T) => boolean, what: string, deadlineMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const index = this.values.findIndex(match);
        if (index < 0) return;
        settle();
        resolve(this.values[index]!);
      };
      const timer = setTimeout(() => {
        settle();
        reject(new Error(`${what} did not arrive within ${deadlineMs / 1000} s`));
      }, deadlineMs);
      const settle = () => {
        clearTimeout(timer);
        this.#waiting.delete(check);
      };
      this.#waiting.add(check);
      check();
    });
  }
}
