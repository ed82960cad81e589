// A live connection: an async iterator of events, and the client's push subscription for those
// who prefer callbacks.

import type { NativeConnection, NativeSubscription } from "../native/index.js";
import { abortable, fromNative, native } from "./errors";
import type * as wire from "./types";

/** The most updates one native call takes. */
const BATCH = 256;

/** What a connection yields, tagged on `type`. The welcome's `connections` list everyone
 * connected; apply each `presence_changed` to that list as set operations (a joined connection
 * may already be in it); `presence` answers `requestPresence()`. */
export type Update =
  | { type: "connected"; welcome: wire.Welcome }
  | { type: "event"; event: wire.EventEnvelope }
  | { type: "replay_done"; through_seq: number }
  | { type: "reset"; reset: wire.Reset }
  | { type: "presence"; presence: wire.Presence }
  | { type: "presence_changed"; presence_changed: wire.PresenceChange }
  | { type: "reconnecting"; attempt: number; reason: string }
  | { type: "unknown"; frame: Record<string, unknown> };

/** Callbacks of `connection.subscribe`. They run in order, one at a time: an async callback is
 * awaited before the next update is handed on. */
export interface Listener {
  /** Each durable event, once and in order, across reconnects. */
  onEvent?: (envelope: wire.EventEnvelope) => void | Promise<void>;
  /** Every update, events included. */
  onUpdate?: (update: Update) => void | Promise<void>;
  /** Each (re)connection the gateway accepted. */
  onOpen?: (welcome: wire.Welcome) => void;
  /** The connection broke and retries after a backoff. */
  onReconnect?: (attempt: number, reason: string) => void;
  /** The connection failed for good (attempts exhausted, or a fatal error). */
  onReconnectFailed?: (error: unknown) => void;
  /** The subscription ended: the connection closed or failed, or a callback threw. Not called
   * after `cancel()`. */
  onClose?: () => void;
}

/** Options of `client.connect`. Giving any callback subscribes them at once; then do not also
 * iterate the connection. */
export interface ConnectOptions extends Listener {
  /** Resume after this seq: the last one the application processed (0 replays everything). */
  afterSeq?: number;
  /** Give up after this many failed reconnects in a row; retries forever when absent. */
  maxReconnectAttempts?: number;
  /** Closes the connection when it aborts. */
  signal?: AbortSignal;
}

/** Options of `sendPrompt`. */
export interface PromptOptions {
  /** The prompt's id; a retry with the same id never runs twice. Generated when absent. */
  promptId?: string;
  /** Attached images, as `data:` URIs or URLs. */
  images?: string[];
  /** Stops waiting for the admission when it aborts. */
  signal?: AbortSignal;
}

/** A live connection to one session. `for await (const envelope of connection)` yields each event
 * once, in order, across reconnects; `connection.updates()` yields every update. */
export class SyncConnection implements AsyncIterable<wire.EventEnvelope> {
  private pending: Update[] = [];
  private taken = 0;
  private refilling: Promise<boolean> | null = null;
  private cursor: number;

  /** @internal */
  constructor(private readonly inner: NativeConnection, options: ConnectOptions = {}) {
    this.cursor = options.afterSeq ?? 0;
    options.signal?.addEventListener("abort", () => void this.close(), { once: true });
    const callbacks = [options.onEvent, options.onUpdate, options.onOpen, options.onReconnect, options.onReconnectFailed, options.onClose];
    if (callbacks.some((callback) => callback)) this.subscribe(options);
  }

  /** The session this connection follows. */
  get sessionId(): string {
    return this.inner.sessionId;
  }

  /** The seq of the last event yielded: the cursor to resume from. */
  get lastSeq(): number {
    return this.cursor;
  }

  /** The next update, or `null` once the connection is closed. A failure is final. */
  async next(): Promise<Update | null> {
    while (this.taken === this.pending.length) {
      if (!(await (this.refilling ??= this.refill()))) return null;
    }
    return this.take();
  }

  /** Every update until the connection closes. */
  async *updates(): AsyncGenerator<Update> {
    for (;;) {
      while (this.taken < this.pending.length) yield this.take();
      if (!(await (this.refilling ??= this.refill()))) return;
    }
  }

  /** Delivers every update to `listener` through the client's push subscription: the
   * alternative to iterating (read a connection one way at a time). The cursor moves as updates
   * are handed on. */
  subscribe(listener: Listener): Subscription {
    return new Subscription((deliver) => this.inner.subscribe(deliver), (update) => this.consumed(update), listener);
  }

  private take(): Update {
    return this.consumed(this.pending[this.taken++]);
  }

  /** Moves the cursor past an update the application takes. */
  private consumed(update: Update): Update {
    if (update.type === "event") this.cursor = update.event.seq;
    else if (update.type === "reset") this.cursor = update.reset.transcript.through_seq;
    return update;
  }

  /** Takes the updates received so far in one native call (concurrent callers share it);
   * false once the connection is closed. */
  private async refill(): Promise<boolean> {
    try {
      const batch = await native(() => this.inner.nextBatch(BATCH));
      if (batch === null) return false;
      [this.pending, this.taken] = [JSON.parse(batch) as Update[], 0];
      return true;
    } finally {
      this.refilling = null;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<wire.EventEnvelope> {
    for await (const update of this.updates()) if (update.type === "event") yield update.event;
  }

  /** Sends a prompt and resolves to its admission. It is resent across reconnects, with the same
   * id, until the gateway answers. */
  async sendPrompt(content: string, options: PromptOptions = {}): Promise<wire.PromptAdmission> {
    const call = () => native(() => this.inner.sendPrompt(content, options.promptId, options.images));
    return JSON.parse(await abortable(call, options.signal));
  }

  /** Cancels the running turn; resolves to `false` when none ran. */
  async cancel(): Promise<boolean> {
    return JSON.parse(await native(() => this.inner.cancel()));
  }

  /** `cancel` under the original client's name. */
  sendCancel(): Promise<boolean> {
    return this.cancel();
  }

  /** Withdraws a queued prompt. */
  async cancelQueued(promptId: string): Promise<void> {
    await native(() => this.inner.cancelQueued(promptId));
  }

  /** Answers a permission request. */
  async replyPermission(permissionId: string, decision: wire.PermissionDecision): Promise<void> {
    await native(() => this.inner.replyPermission(permissionId, JSON.stringify(decision)));
  }

  /** Asks the gateway for everyone connected; the answer arrives as a `presence` update. While
   * disconnected nothing is sent: the next welcome lists everyone. */
  async requestPresence(): Promise<void> {
    await native(() => this.inner.requestPresence());
  }

  /** Closes the socket and stops reconnecting; iteration then ends. */
  async close(): Promise<void> {
    await this.inner.close();
  }

}

/** A push subscription (`connection.subscribe`): the client delivers each update to the
 * listener until the connection closes or fails, a callback throws, or `cancel()`. */
export class Subscription {
  private readonly native: NativeSubscription;
  private delivered: Promise<void> = Promise.resolve();
  private ended = false;
  private end!: (error: unknown) => void;
  /** Resolves once the subscription ended and its callbacks returned: to the error that ended
   * it (a final connection failure, or a callback that threw), or to `undefined`. */
  readonly finished: Promise<unknown>;

  /** @internal */
  constructor(
    subscribe: (deliver: (error: Error | null, update: string | null) => void) => NativeSubscription,
    private readonly consumed: (update: Update) => Update,
    private readonly listener: Listener,
  ) {
    this.finished = new Promise((resolve) => { this.end = resolve; });
    // Each delivery waits for the one before, so callbacks run in order, one at a time.
    this.native = subscribe((error, update) => {
      this.delivered = this.delivered.then(() => this.deliver(error, update));
    });
  }

  /** True once the subscription ended: the connection closed or failed, a callback threw, or
   * it was cancelled. */
  get isFinished(): boolean {
    return this.ended;
  }

  /** Stops the deliveries now; no callback runs after it, `onClose` included. */
  cancel(): void {
    this.native.cancel();
    this.finish(undefined);
  }

  private async deliver(error: Error | null, json: string | null): Promise<void> {
    if (this.ended) return;
    const listener = this.listener;
    try {
      if (error !== null) {
        const failure = fromNative(error);
        listener.onReconnectFailed?.(failure);
        return this.close(failure);
      }
      if (json === null) return this.close(undefined);
      const update = this.consumed(JSON.parse(json) as Update);
      await listener.onUpdate?.(update);
      if (update.type === "event") await listener.onEvent?.(update.event);
      else if (update.type === "connected") listener.onOpen?.(update.welcome);
      else if (update.type === "reconnecting") listener.onReconnect?.(update.attempt, update.reason);
    } catch (thrown) {
      this.native.cancel();
      this.close(thrown);
    }
  }

  private close(error: unknown): void {
    if (this.ended) return;
    this.finish(error);
    this.listener.onClose?.();
  }

  private finish(error: unknown): void {
    this.ended = true;
    this.end(error);
  }
}
