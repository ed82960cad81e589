// The client: every lifecycle call a Promise, and live connections.

import { NativeClient } from "../native/index.js";
import { SyncConnection, type ConnectOptions } from "./connection";
import { abortable, native, nativeSync } from "./errors";
import type * as wire from "./types";

/** How the client authenticates: a bearer token; a token source, asked before requests and
 * connection attempts and again with `refresh` true after the gateway answered `token_expired`;
 * or a back end's service credentials (the client then signs its own short-lived tokens). */
export type ClientAuth =
  | { type: "token"; token: string }
  | { type: "source"; token: (refresh: boolean) => string | Promise<string> }
  | { type: "service"; name: string; organization: string; secret: string };

/** Options of `createSyncClient`. */
export interface SyncClientOptions {
  /** The gateway's base URL, for example `http://127.0.0.1:8787`. */
  baseUrl: string;
  /** The credentials. */
  auth: ClientAuth;
  /** The kind of client, for example `slack`, `cli` or `web`. */
  source?: string;
  /** Timeout of each HTTP request, in milliseconds. */
  requestTimeoutMs?: number;
  /** A connection that hears nothing for this long reconnects, in milliseconds. */
  livenessTimeoutMs?: number;
}

/** Options every long call takes. */
export interface CallOptions {
  /** Rejects the call with the signal's reason when it aborts. */
  signal?: AbortSignal;
}

/** A client of one gateway. */
export class SyncClient {
  private readonly inner: NativeClient;

  /** Builds a client; prefer `createSyncClient`. */
  constructor(options: SyncClientOptions) {
    const { auth } = options;
    const source = auth.type === "source" ? auth.token : undefined;
    this.inner = nativeSync(
      () =>
        new NativeClient({
          baseUrl: options.baseUrl,
          token: auth.type === "token" ? auth.token : undefined,
          serviceName: auth.type === "service" ? auth.name : undefined,
          serviceOrganization: auth.type === "service" ? auth.organization : undefined,
          serviceSecret: auth.type === "service" ? auth.secret : undefined,
          source: options.source,
          requestTimeoutMs: options.requestTimeoutMs,
          livenessTimeoutMs: options.livenessTimeoutMs,
        }, source && (async (refresh: boolean) => source(refresh))),
    );
  }

  private async call<T>(run: () => Promise<string>, signal?: AbortSignal): Promise<T> {
    return JSON.parse(await abortable(() => native(run), signal)) as T;
  }

  /** Creates a session; a retry with the same `idempotencyKey` returns the same one. */
  createSession(
    request: wire.CreateSessionRequest = {},
    options: CallOptions & { idempotencyKey?: string } = {},
  ): Promise<wire.SessionInfo> {
    return this.call(() => this.inner.createSession(JSON.stringify(request), options.idempotencyKey), options.signal);
  }

  /** A page of the organisation's sessions, newest first. */
  listSessions(options: CallOptions & { limit?: number; cursor?: string } = {}): Promise<wire.SessionList> {
    return this.call(() => this.inner.listSessions(options.limit, options.cursor), options.signal);
  }

  /** One session's info. */
  getSession(sessionId: string, options: CallOptions = {}): Promise<wire.SessionInfo> {
    return this.call(() => this.inner.getSession(sessionId), options.signal);
  }

  /** `getSession` under the original client's name. */
  getInfo(sessionId: string, options: CallOptions = {}): Promise<wire.SessionInfo> {
    return this.getSession(sessionId, options);
  }

  /** Terminates a session and deletes its sandbox. */
  async deleteSession(sessionId: string, options: CallOptions = {}): Promise<void> {
    await this.call(() => this.inner.deleteSession(sessionId), options.signal);
  }

  /** Pauses a session, keeping its state. */
  pause(sessionId: string, options: CallOptions = {}): Promise<wire.SessionInfo> {
    return this.call(() => this.inner.pause(sessionId), options.signal);
  }

  /** Resumes a paused session. */
  resume(sessionId: string, options: CallOptions = {}): Promise<wire.SessionInfo> {
    return this.call(() => this.inner.resume(sessionId), options.signal);
  }

  /** Saves a snapshot of the session's workspace and agent state. */
  snapshot(sessionId: string, options: CallOptions = {}): Promise<wire.SnapshotInfo> {
    return this.call(() => this.inner.snapshot(sessionId), options.signal);
  }

  /** Sends a prompt over HTTP: the same admission as a connection's `sendPrompt`. */
  sendMessage(
    sessionId: string,
    message: string | wire.SendMessageRequest,
    options: CallOptions = {},
  ): Promise<wire.PromptAdmission> {
    const request = typeof message === "string" ? { content: message } : message;
    return this.call(() => this.inner.sendMessage(sessionId, JSON.stringify(request)), options.signal);
  }

  /** `sendMessage` under the original client's name. */
  postMessage(
    sessionId: string,
    message: string | wire.SendMessageRequest,
    options: CallOptions = {},
  ): Promise<wire.PromptAdmission> {
    return this.sendMessage(sessionId, message, options);
  }

  /** Cancels the running turn; resolves to `false` when none ran. */
  cancel(sessionId: string, options: CallOptions = {}): Promise<boolean> {
    return this.call(() => this.inner.cancel(sessionId), options.signal);
  }

  /** `cancel` under the original client's name. */
  postCancel(sessionId: string, options: CallOptions = {}): Promise<boolean> {
    return this.cancel(sessionId, options);
  }

  /** Withdraws a queued prompt. */
  async cancelQueued(sessionId: string, promptId: string, options: CallOptions = {}): Promise<void> {
    await this.call(() => this.inner.cancelQueued(sessionId, promptId), options.signal);
  }

  /** Answers a permission request. */
  async replyPermission(
    sessionId: string,
    permissionId: string,
    decision: wire.PermissionDecision,
    options: CallOptions = {},
  ): Promise<void> {
    await this.call(() => this.inner.replyPermission(sessionId, permissionId, JSON.stringify(decision)), options.signal);
  }

  /** A page of the session's durable events after `afterSeq`. */
  events(
    sessionId: string,
    options: CallOptions & { afterSeq?: number; limit?: number } = {},
  ): Promise<wire.EventPage> {
    return this.call(() => this.inner.events(sessionId, options.afterSeq ?? 0, options.limit ?? 500), options.signal);
  }

  /** The session's transcript as the server folded it. */
  transcript(sessionId: string, options: CallOptions = {}): Promise<wire.Transcript> {
    return this.call(() => this.inner.transcript(sessionId), options.signal);
  }

  /** What the session's agent spent on models: tokens and cost, in all and per model. */
  usage(sessionId: string, options: CallOptions = {}): Promise<wire.UsageReport> {
    return this.call(() => this.inner.usage(sessionId), options.signal);
  }

  /** What the organisation's sessions spent on models from `start` (inclusive) to `end`
   * (exclusive), in milliseconds since the Unix epoch; needs the `admin` scope. */
  organizationUsage(range: { start?: number; end?: number } = {}, options: CallOptions = {}): Promise<wire.UsageReport> {
    return this.call(() => this.inner.organizationUsage(range.start, range.end), options.signal);
  }

  /** Opens a live connection: it replays events after `afterSeq`, then follows the session,
   * reconnecting and resuming on its own. */
  connect(sessionId: string, options: ConnectOptions = {}): SyncConnection {
    const inner = this.inner.connect(sessionId, options.afterSeq ?? 0, options.maxReconnectAttempts);
    return new SyncConnection(inner, options);
  }
}

/** Builds a client of one gateway. */
export function createSyncClient(options: SyncClientOptions): SyncClient {
  return new SyncClient(options);
}
