// Deterministic memory management for native tensors, after tfjs-core's tidy():
// every tensor created inside tidy(fn) is disposed when fn returns, except the
// tensors fn returns (which move to the enclosing scope) and tensors passed to keep().
// Tensors created outside any scope belong to the caller (dispose() them); a GC
// finalizer on the native handle is only a backstop.

/** Anything that owns native memory and can be released. */
export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
  /** true once keep() was called: scopes never dispose it. */
  kept: boolean;
}

const scopes: Disposable[][] = [];

/** Called by every tensor constructor. */
export function track(t: Disposable): void {
  const top = scopes[scopes.length - 1];
  if (top !== undefined) top.push(t);
}

/** Exempt a tensor from scope disposal; the caller now owns it. */
export function keep<T extends Disposable>(t: T): T {
  t.kept = true;
  return t;
}

function collect(value: unknown, into: Set<unknown>, depth: number): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ('dispose' in value && 'kept' in value) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, into, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, into, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, into, depth + 1);
  }
}

/**
 * Run fn and dispose every tensor it created, except those in its result (a tensor, or
 * arrays / plain objects / Maps of them) and kept ones. fn must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  scopes.push([]);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    for (const t of scopes.pop()!) if (!t.kept) t.dispose();
    throw e;
  }
  const created = scopes.pop()!;
  if (result instanceof Promise) {
    for (const t of created) if (!t.kept) t.dispose();
    // Nobody can await this promise any more (the caller gets the TypeError below), so its
    // rejection (typically a tensor used after this scope freed it) must not surface later
    // as an unhandled rejection that kills the process.
    result.catch(() => undefined);
    throw new TypeError('tidy() takes a synchronous function: tensors cannot outlive an await inside a scope');
  }
  const returned = new Set<unknown>();
  collect(result, returned, 0);
  for (const t of created) {
    if (t.kept) continue;
    if (returned.has(t)) track(t);
    else t.dispose();
  }
  return result;
}

/** Dispose every tensor in a value (tensor, array, plain object or Map of tensors). */
export function dispose(value: unknown): void {
  const all = new Set<unknown>();
  collect(value, all, 0);
  for (const t of all) (t as Disposable).dispose();
}

/** How many scopes are open (for tests and assertions). */
export function scopeDepth(): number {
  return scopes.length;
}
