// Errors: one `ProliferateError` class whose `code` is the protocol's stable machine code.

import type { ErrorCode } from "./types";

/** A failed call. `code` is the protocol's machine code, the same in every language. */
export class ProliferateError extends Error {
  /** The stable machine code. */
  readonly code: ErrorCode;
  /** The HTTP status, when the gateway refused over HTTP. */
  readonly status: number | undefined;
  /** What failed: `api` (the gateway refused), `transport`, `timeout`, `closed`, `config`... */
  readonly kind: string;

  constructor(code: ErrorCode, message: string, options: { status?: number; kind?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "ProliferateError";
    this.code = code;
    this.status = options.status;
    this.kind = options.kind ?? "api";
  }
}

/** The `ProliferateError` for a native failure (its message carries the details as JSON). */
export function fromNative(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  try {
    const { code, message, status, kind } = JSON.parse(error.message);
    return new ProliferateError(code, message, { status: status ?? undefined, kind, cause: error });
  } catch {
    return error;
  }
}

/** Awaits a native call, turning its failure into a `ProliferateError`. */
export async function native<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromNative(error);
  }
}

/** Native calls that throw synchronously (constructors, decoding). */
export function nativeSync<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw fromNative(error);
  }
}

/** Starts `call` and settles with it, or rejects with the signal's reason as soon as it aborts
 * (the call's own outcome is then ignored). */
export function abortable<T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  const promise = call();
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
