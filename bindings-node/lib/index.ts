// Proliferate for Node.js: run coding agents in sandboxes and stream their work live.

export { createSyncClient, SyncClient } from "./client";
export type { CallOptions, ClientAuth, SyncClientOptions } from "./client";
export { Subscription, SyncConnection } from "./connection";
export type { ConnectOptions, Listener, PromptOptions, Update } from "./connection";
export { ProliferateError } from "./errors";
export { decodeAs, TranscriptReducer } from "./protocol";
export * from "./types";
