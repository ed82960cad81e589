//! The client: one object per gateway, every call async on the tokio runtime.

use std::sync::Arc;
use std::time::Duration;

use proliferate_client::protocol::v1::{self, PermissionDecision};
use proliferate_client::{Auth, ClientError, ConnectionOptions, ReconnectPolicy};

use crate::connection::Connection;
use crate::error::{ProliferateError, bad_request};
use crate::protocol::{convert, envelope};
use crate::records::EventEnvelope;
use crate::wire::{
    PromptAdmission, SandboxLimits, SessionInfo, SessionList, SnapshotInfo, Transcript, UsageReport,
};

/// How to build a client. Give `token`, or all three service fields, or neither with
/// `Client.withTokenSource`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ClientOptions {
    /// The gateway's base URL, for example `http://127.0.0.1:8787`.
    pub base_url: String,
    /// A bearer token.
    #[uniffi(default)]
    pub token: Option<String>,
    /// The service's name (the subject of the tokens the client signs).
    #[uniffi(default)]
    pub service_name: Option<String>,
    /// The organisation the service acts for.
    #[uniffi(default)]
    pub service_organization: Option<String>,
    /// The gateway's service secret.
    #[uniffi(default)]
    pub service_secret: Option<String>,
    /// The kind of client, for example `ios` or `cli`.
    #[uniffi(default)]
    pub source: Option<String>,
    /// Timeout of each HTTP request, in milliseconds.
    #[uniffi(default)]
    pub request_timeout_ms: Option<u64>,
    /// A connection that hears nothing for this long reconnects, in milliseconds.
    #[uniffi(default)]
    pub liveness_timeout_ms: Option<u64>,
}

/// What to create a session with.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct CreateSessionRequest {
    /// A human title.
    #[uniffi(default)]
    pub title: Option<String>,
    /// The model, as `provider/model`; the server's default otherwise.
    #[uniffi(default)]
    pub model: Option<String>,
    /// A prompt to run as soon as the agent is up.
    #[uniffi(default)]
    pub initial_prompt: Option<String>,
    /// Start from this snapshot.
    #[uniffi(default)]
    pub snapshot_id: Option<String>,
    /// Free-form metadata, as JSON text.
    #[uniffi(default)]
    pub metadata: Option<String>,
    /// Resource limits for the sandbox, each no higher than the server's.
    #[uniffi(default)]
    pub limits: Option<SandboxLimits>,
    /// Hosts the sandbox may reach beyond the server's egress allow-list.
    #[uniffi(default)]
    pub egress_allow: Vec<String>,
}

/// Gives the client bearer tokens.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync {
    /// A token to use now: called before requests and connection attempts, and with `refresh`
    /// true after the gateway answered `token_expired`.
    async fn token(&self, refresh: bool) -> Result<String, ProliferateError>;
}

/// The application's token source, as the client asks it.
struct ForeignTokenSource(Arc<dyn TokenSource>);

#[async_trait::async_trait]
impl proliferate_client::TokenSource for ForeignTokenSource {
    async fn token(&self, refresh: bool) -> Result<String, ClientError> {
        self.0
            .token(refresh)
            .await
            .map_err(ClientError::token_source_failed)
    }
}

/// A client of one gateway.
#[derive(uniffi::Object)]
pub struct Client {
    client: proliferate_client::Client,
}

#[uniffi::export]
impl Client {
    /// Builds a client.
    #[uniffi::constructor]
    pub fn new(options: ClientOptions) -> Result<Self, ProliferateError> {
        Self::build(options, None)
    }

    /// Builds a client whose tokens come from `token_source`, asked again for a fresh one when
    /// the gateway answers `token_expired`.
    #[uniffi::constructor]
    pub fn with_token_source(
        options: ClientOptions,
        token_source: Arc<dyn TokenSource>,
    ) -> Result<Self, ProliferateError> {
        Self::build(options, Some(Arc::new(ForeignTokenSource(token_source))))
    }
}

impl Client {
    fn build(
        options: ClientOptions,
        token_source: Option<Arc<dyn proliferate_client::TokenSource>>,
    ) -> Result<Self, ProliferateError> {
        let auth = Auth::from_fields(
            options.token,
            token_source,
            options.service_name,
            options.service_organization,
            options.service_secret,
        )?;
        let mut builder = proliferate_client::Client::builder(options.base_url).auth(auth);
        if let Some(source) = options.source {
            builder = builder.source(source);
        }
        if let Some(milliseconds) = options.request_timeout_ms {
            builder = builder.request_timeout(Duration::from_millis(milliseconds));
        }
        if let Some(milliseconds) = options.liveness_timeout_ms {
            builder = builder.liveness_timeout(Duration::from_millis(milliseconds));
        }
        Ok(Self {
            client: builder.build()?,
        })
    }
}

export! {
impl Client {
    /// Creates a session; a retry with the same `idempotency_key` returns the same one.
    #[uniffi::method(default(idempotency_key = None))]
    pub async fn create_session(
        &self,
        request: CreateSessionRequest,
        idempotency_key: Option<String>,
    ) -> Result<SessionInfo, ProliferateError> {
        let metadata = match request.metadata {
            Some(json) => serde_json::from_str(&json).map_err(bad_request)?,
            None => serde_json::Value::Null,
        };
        let request = v1::CreateSessionRequest {
            title: request.title,
            model: request.model,
            initial_prompt: request.initial_prompt,
            snapshot_id: request.snapshot_id,
            metadata,
            limits: request.limits.map(Into::into),
            egress_allow: request.egress_allow,
            ..v1::CreateSessionRequest::default()
        };
        let session = match idempotency_key {
            Some(key) => self.client.create_session_idempotent(&request, &key).await?,
            None => self.client.create_session(&request).await?,
        };
        convert(&session)
    }

    /// A page of the organisation's sessions, newest first.
    #[uniffi::method(default(limit = None, cursor = None))]
    pub async fn list_sessions(
        &self,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Result<SessionList, ProliferateError> {
        convert(&self.client.list_sessions(limit, cursor.as_deref()).await?)
    }

    /// One session's info.
    pub async fn get_session(&self, session_id: String) -> Result<SessionInfo, ProliferateError> {
        convert(&self.client.get_session(&session_id).await?)
    }

    /// Terminates a session and deletes its sandbox.
    pub async fn delete_session(&self, session_id: String) -> Result<(), ProliferateError> {
        Ok(self.client.delete_session(&session_id).await?)
    }

    /// Pauses a session, keeping its state.
    pub async fn pause(&self, session_id: String) -> Result<SessionInfo, ProliferateError> {
        convert(&self.client.pause(&session_id).await?)
    }

    /// Resumes a paused session.
    pub async fn resume(&self, session_id: String) -> Result<SessionInfo, ProliferateError> {
        convert(&self.client.resume(&session_id).await?)
    }

    /// Saves a snapshot of the session's workspace and agent state.
    pub async fn snapshot(&self, session_id: String) -> Result<SnapshotInfo, ProliferateError> {
        convert(&self.client.snapshot(&session_id).await?)
    }

    /// Sends a prompt over HTTP: the same admission as a connection's `send_prompt`.
    #[uniffi::method(default(prompt_id = None))]
    pub async fn send_message(
        &self,
        session_id: String,
        content: String,
        prompt_id: Option<String>,
    ) -> Result<PromptAdmission, ProliferateError> {
        let request = v1::SendMessageRequest {
            content,
            prompt_id,
            ..v1::SendMessageRequest::default()
        };
        convert(&self.client.send_message(&session_id, &request).await?)
    }

    /// Cancels the running turn; false when none ran.
    pub async fn cancel(&self, session_id: String) -> Result<bool, ProliferateError> {
        Ok(self.client.cancel(&session_id).await?)
    }

    /// Withdraws a queued prompt.
    pub async fn cancel_queued(
        &self,
        session_id: String,
        prompt_id: String,
    ) -> Result<(), ProliferateError> {
        Ok(self.client.cancel_queued(&session_id, &prompt_id).await?)
    }

    /// Answers a permission request with `once`, `always` or `reject`.
    pub async fn reply_permission(
        &self,
        session_id: String,
        permission_id: String,
        decision: String,
    ) -> Result<(), ProliferateError> {
        let decision = decision_from(&decision)?;
        Ok(self
            .client
            .reply_permission(&session_id, &permission_id, decision)
            .await?)
    }

    /// The session's durable events after `after_seq`, a page at a time.
    #[uniffi::method(default(after_seq = 0, limit = 500))]
    pub async fn events(
        &self,
        session_id: String,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<EventEnvelope>, ProliferateError> {
        let page = self.client.events(&session_id, after_seq, limit).await?;
        page.events.iter().map(envelope).collect()
    }

    /// The session's transcript as the server folded it.
    pub async fn transcript(&self, session_id: String) -> Result<Transcript, ProliferateError> {
        convert(&self.client.transcript(&session_id).await?)
    }

    /// What a session's agent spent on models: tokens and cost, in all and per model.
    pub async fn usage(&self, session_id: String) -> Result<UsageReport, ProliferateError> {
        convert(&self.client.usage(&session_id).await?)
    }

    /// What the organisation's sessions spent on models from `start` (inclusive) to `end`
    /// (exclusive), in milliseconds since the Unix epoch; needs the `admin` scope.
    pub async fn organization_usage(
        &self,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Result<UsageReport, ProliferateError> {
        convert(&self.client.organization_usage(start, end).await?)
    }

    /// Opens a live connection that replays after `after_seq`, then follows the session; it
    /// gives up after `max_reconnect_attempts` failed attempts in a row (never when absent).
    #[uniffi::method(default(after_seq = 0, max_reconnect_attempts = None))]
    pub async fn connect(
        &self,
        session_id: String,
        after_seq: u64,
        max_reconnect_attempts: Option<u32>,
    ) -> Arc<Connection> {
        let options = ConnectionOptions {
            after_seq,
            reconnect: ReconnectPolicy {
                max_attempts: max_reconnect_attempts,
                ..ReconnectPolicy::default()
            },
        };
        Arc::new(Connection::new(self.client.connect(&session_id, options)))
    }
}
}

/// Parses a permission decision: `once`, `always` or `reject`.
pub(crate) fn decision_from(decision: &str) -> Result<PermissionDecision, ProliferateError> {
    serde_json::from_value(serde_json::Value::from(decision)).map_err(bad_request)
}
