// The protocol without I/O: validation by type name and the transcript reducer, both in Rust.

import { NativeReducer, normalize } from "../native/index.js";
import { nativeSync } from "./errors";
import type * as wire from "./types";

/** Validates `value` (JSON text or data) as the named wire type with the Rust protocol types and
 * returns it as this version reads it. Throws a `bad_request` `ProliferateError` naming the
 * problem when it is invalid. */
export function decodeAs<T = unknown>(typeName: string, value: unknown): T {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return JSON.parse(nativeSync(() => normalize(typeName, text))) as T;
}

/** Folds events into a transcript exactly as the server does. */
export class TranscriptReducer {
  private readonly inner: NativeReducer;

  /** An empty transcript for `sessionId`, or one that continues `transcript`. */
  constructor(sessionId: string, transcript?: wire.Transcript) {
    this.inner = nativeSync(() => new NativeReducer(sessionId, transcript && JSON.stringify(transcript)));
  }

  /** Applies one event; `false` when its seq was already folded. */
  apply(envelope: wire.EventEnvelope): boolean {
    return nativeSync(() => this.inner.apply(JSON.stringify(envelope)));
  }

  /** The transcript so far. */
  get transcript(): wire.Transcript {
    return JSON.parse(nativeSync(() => this.inner.transcript()));
  }
}
