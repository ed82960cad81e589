//! The client: one native object per facade client, every call a Promise of JSON text.

use std::sync::Arc;
use std::time::Duration;

use napi::Status;
use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use proliferate_client::protocol::v1::{CreateSessionRequest, SendMessageRequest};
use proliferate_client::{
    Auth, Client, ClientError, ConnectionOptions, ReconnectPolicy, TokenSource,
};
use serde::Serialize;

use crate::connection::NativeConnection;
use crate::error::{bad_request, to_javascript};
use crate::protocol::{encode, parse};

/// Awaits a client call and encodes its answer.
pub(crate) fn answer<T: Serialize>(result: Result<T, ClientError>) -> napi::Result<String> {
    encode(&result.map_err(to_javascript)?)
}

/// A seq cursor from JavaScript; negative ones are refused.
fn cursor(after_seq: i64) -> napi::Result<u64> {
    u64::try_from(after_seq).map_err(|_| bad_request(format!("after_seq {after_seq} is negative")))
}

/// How to build a client.
#[napi(object)]
pub struct ClientOptions {
    /// The gateway's base URL.
    pub base_url: String,
    /// A bearer token; or give the three service fields.
    pub token: Option<String>,
    /// The service's name (the subject of the tokens it signs).
    pub service_name: Option<String>,
    /// The organisation the service acts for.
    pub service_organization: Option<String>,
    /// The gateway's service secret.
    pub service_secret: Option<String>,
    /// The kind of client, for example `slack` or `cli`.
    pub source: Option<String>,
    /// Timeout of each HTTP request, in milliseconds.
    pub request_timeout_ms: Option<u32>,
    /// A connection with no frame for this long reconnects, in milliseconds.
    pub liveness_timeout_ms: Option<u32>,
}

/// The application's `(refresh: boolean) => Promise<string>`, callable from any thread; weak, so
/// it never keeps Node running on its own.
type TokenCallback = ThreadsafeFunction<bool, Promise<String>, bool, Status, false, true>;

/// Tokens from a JavaScript function, called on the main thread and awaited here.
struct JavaScriptTokenSource(TokenCallback);

#[async_trait::async_trait]
impl TokenSource for JavaScriptTokenSource {
    async fn token(&self, refresh: bool) -> Result<String, ClientError> {
        let promise = self
            .0
            .call_async(refresh)
            .await
            .map_err(|error| ClientError::token_source_failed(error.reason))?;
        promise
            .await
            .map_err(|error| ClientError::token_source_failed(error.reason))
    }
}

/// A client of one gateway.
#[napi]
pub struct NativeClient {
    client: Client,
}

#[napi]
impl NativeClient {
    /// Builds a client; `token_source(refresh)` gives tokens instead of `options.token`.
    #[napi(constructor)]
    pub fn new(options: ClientOptions, token_source: Option<TokenCallback>) -> napi::Result<Self> {
        let token_source = token_source
            .map(|callback| Arc::new(JavaScriptTokenSource(callback)) as Arc<dyn TokenSource>);
        let auth = Auth::from_fields(
            options.token,
            token_source,
            options.service_name,
            options.service_organization,
            options.service_secret,
        )
        .map_err(to_javascript)?;
        let mut builder = Client::builder(options.base_url).auth(auth);
        if let Some(source) = options.source {
            builder = builder.source(source);
        }
        if let Some(milliseconds) = options.request_timeout_ms {
            builder = builder.request_timeout(Duration::from_millis(milliseconds.into()));
        }
        if let Some(milliseconds) = options.liveness_timeout_ms {
            builder = builder.liveness_timeout(Duration::from_millis(milliseconds.into()));
        }
        Ok(Self {
            client: builder.build().map_err(to_javascript)?,
        })
    }

    /// Creates a session from a `CreateSessionRequest` (JSON); idempotent under a key.
    #[napi]
    pub async fn create_session(
        &self,
        request: String,
        idempotency_key: Option<String>,
    ) -> napi::Result<String> {
        let request: CreateSessionRequest = parse(&request)?;
        answer(match idempotency_key {
            Some(key) => self.client.create_session_idempotent(&request, &key).await,
            None => self.client.create_session(&request).await,
        })
    }

    /// Lists sessions, newest first, a page at a time.
    #[napi]
    pub async fn list_sessions(
        &self,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> napi::Result<String> {
        answer(self.client.list_sessions(limit, cursor.as_deref()).await)
    }

    /// One session's info.
    #[napi]
    pub async fn get_session(&self, session_id: String) -> napi::Result<String> {
        answer(self.client.get_session(&session_id).await)
    }

    /// Terminates a session and deletes its sandbox.
    #[napi]
    pub async fn delete_session(&self, session_id: String) -> napi::Result<String> {
        answer(self.client.delete_session(&session_id).await)
    }

    /// Pauses a session, keeping its state.
    #[napi]
    pub async fn pause(&self, session_id: String) -> napi::Result<String> {
        answer(self.client.pause(&session_id).await)
    }

    /// Resumes a paused session.
    #[napi]
    pub async fn resume(&self, session_id: String) -> napi::Result<String> {
        answer(self.client.resume(&session_id).await)
    }

    /// Saves a snapshot of a session's workspace.
    #[napi]
    pub async fn snapshot(&self, session_id: String) -> napi::Result<String> {
        answer(self.client.snapshot(&session_id).await)
    }

    /// Sends a prompt over HTTP from a `SendMessageRequest` (JSON).
    #[napi]
    pub async fn send_message(&self, session_id: String, request: String) -> napi::Result<String> {
        let request: SendMessageRequest = parse(&request)?;
        answer(self.client.send_message(&session_id, &request).await)
    }

    /// Cancels the running turn; resolves to `false` when none ran.
    #[napi]
    pub async fn cancel(&self, session_id: String) -> napi::Result<String> {
        answer(self.client.cancel(&session_id).await)
    }

    /// Withdraws a queued prompt.
    #[napi]
    pub async fn cancel_queued(
        &self,
        session_id: String,
        prompt_id: String,
    ) -> napi::Result<String> {
        answer(self.client.cancel_queued(&session_id, &prompt_id).await)
    }

    /// Answers a permission request with `"once"`, `"always"` or `"reject"` (JSON).
    #[napi]
    pub async fn reply_permission(
        &self,
        session_id: String,
        permission_id: String,
        decision: String,
    ) -> napi::Result<String> {
        let decision = parse(&decision)?;
        answer(
            self.client
                .reply_permission(&session_id, &permission_id, decision)
                .await,
        )
    }

    /// A page of a session's durable events after `after_seq`.
    #[napi]
    pub async fn events(
        &self,
        session_id: String,
        after_seq: i64,
        limit: u32,
    ) -> napi::Result<String> {
        let after_seq = cursor(after_seq)?;
        answer(self.client.events(&session_id, after_seq, limit).await)
    }

    /// A session's transcript as the server folded it.
    #[napi]
    pub async fn transcript(&self, session_id: String) -> napi::Result<String> {
        answer(self.client.transcript(&session_id).await)
    }

    /// What a session's agent spent on models.
    #[napi]
    pub async fn usage(&self, session_id: String) -> napi::Result<String> {
        answer(self.client.usage(&session_id).await)
    }

    /// What the organisation's sessions spent on models from `start` to `end`.
    #[napi]
    pub async fn organization_usage(
        &self,
        start: Option<i64>,
        end: Option<i64>,
    ) -> napi::Result<String> {
        answer(self.client.organization_usage(start, end).await)
    }

    /// Opens a live connection that replays after `after_seq`, then follows the session;
    /// it gives up after `max_reconnect_attempts` failed attempts in a row (never when absent).
    #[napi]
    pub fn connect(
        &self,
        session_id: String,
        after_seq: i64,
        max_reconnect_attempts: Option<u32>,
    ) -> napi::Result<NativeConnection> {
        let options = ConnectionOptions {
            after_seq: cursor(after_seq)?,
            reconnect: ReconnectPolicy {
                max_attempts: max_reconnect_attempts,
                ..ReconnectPolicy::default()
            },
        };
        Ok(napi::bindgen_prelude::within_runtime_if_available(|| {
            NativeConnection::new(self.client.connect(&session_id, options))
        }))
    }
}
