/** Read a response body to its end; throws if the stream breaks off. */
export async function readToEnd(reader: ReadableStreamDefaultReader<Uint8Array>, text = ""): Promise<string> {
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text + decoder.decode();
    text += decoder.decode(value, { stream: true });
  }
}

/** Read until `text` holds `wanted`. */
export async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, wanted: string): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes(wanted)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended before ${JSON.stringify(wanted)}; got ${JSON.stringify(text)}`);
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** `task(0…count-1)`, `concurrency` at a time. */
export async function inParallel<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

/** Poll `read` every 250 ms until `ok` holds of it or `ms` passed; the last reading either way. */
export async function pollUntil<T>(read: () => T, ok: (value: T) => boolean, ms: number): Promise<T> {
  const deadline = performance.now() + ms;
  let value = read();
  while (!ok(value) && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    value = read();
  }
  return value;
}

/** Poll `read` every 250 ms until its reading has not changed for `quietMs` (or `ms` passed); that reading. */
export async function steady<T>(read: () => T, quietMs: number, ms: number): Promise<T> {
  const deadline = performance.now() + ms;
  let value = read();
  let since = performance.now();
  while (performance.now() - since < quietMs && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const next = read();
    if (JSON.stringify(next) !== JSON.stringify(value)) [value, since] = [next, performance.now()];
  }
  return value;
}
