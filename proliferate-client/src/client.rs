//! The client: configuration, and every lifecycle and HTTP call of the gateway.

use std::time::Duration;

use proliferate_core::protocol::v1::*;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::connection::{Connection, ConnectionOptions};
use crate::{Auth, ClientError};

/// Settings shared by a client's calls and connections.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub base_url: String,
    pub auth: Auth,
    pub source: String,
    pub request_timeout: Duration,
    pub liveness_timeout: Option<Duration>,
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    settings: Settings,
    connect_timeout: Duration,
}

impl ClientBuilder {
    /// How the client authenticates.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.settings.auth = auth;
        self
    }

    /// A fixed bearer token.
    pub fn token(self, token: impl Into<String>) -> Self {
        self.auth(Auth::Token(token.into()))
    }

    /// The kind of client this is: `web`, `cli`, `slack`, `api`, `automation`, ... (default `api`).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.settings.source = source.into();
        self
    }

    /// The longest an HTTP call may take (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// The longest a TCP connect may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Reconnect a connection that received nothing for this long (default: three heartbeat
    /// intervals, as the gateway announces them).
    pub fn liveness_timeout(mut self, timeout: Duration) -> Self {
        self.settings.liveness_timeout = Some(timeout);
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, ClientError> {
        if !(self.settings.base_url.starts_with("http://")
            || self.settings.base_url.starts_with("https://"))
        {
            return Err(ClientError::Config(format!(
                "the base URL must start with http:// or https://, not {:?}",
                self.settings.base_url
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|error| ClientError::Config(error.to_string()))?;
        Ok(Client {
            settings: self.settings,
            http,
        })
    }
}

/// A client of one gateway. Cheap to clone; clones share connections pools.
#[derive(Debug, Clone)]
pub struct Client {
    settings: Settings,
    http: reqwest::Client,
}

impl Client {
    /// Starts building a client of the gateway at `base_url` (for example `http://127.0.0.1:8787`).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            settings: Settings {
                base_url: base_url.into().trim_end_matches('/').to_owned(),
                auth: Auth::Token(String::new()),
                source: "api".into(),
                request_timeout: Duration::from_secs(30),
                liveness_timeout: None,
            },
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Sends one HTTP request; a `token_expired` answer is retried once with a fresh token.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
        headers: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        let mut refresh = false;
        loop {
            let token = self.settings.auth.token(refresh).await?;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.settings.base_url))
                .timeout(self.settings.request_timeout)
                .bearer_auth(token);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            if status.is_success() {
                let bytes = if status == StatusCode::NO_CONTENT || bytes.is_empty() {
                    &b"null"[..]
                } else {
                    &bytes[..]
                };
                return serde_json::from_slice(bytes)
                    .map_err(|error| ClientError::InvalidResponse(error.to_string()));
            }
            let error = match serde_json::from_slice::<Problem>(&bytes) {
                Ok(problem) => ClientError::from_problem(problem),
                Err(_) => ClientError::Api {
                    code: ErrorCode::parse(&format!("http_{}", status.as_u16())),
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                    status: Some(status.as_u16()),
                },
            };
            if error.code() == ErrorCode::TokenExpired
                && !refresh
                && self.settings.auth.can_refresh()
            {
                refresh = true;
                continue;
            }
            return Err(error);
        }
    }

    /// Creates a session and starts its sandbox.
    pub async fn create_session(
        &self,
        request: &CreateSessionRequest,
    ) -> Result<SessionInfo, ClientError> {
        self.call(Method::POST, "/v1/sessions", Some(request), &[])
            .await
    }

    /// Creates a session; retries with the same `idempotency_key` return the same session.
    pub async fn create_session_idempotent(
        &self,
        request: &CreateSessionRequest,
        idempotency_key: &str,
    ) -> Result<SessionInfo, ClientError> {
        self.call(
            Method::POST,
            "/v1/sessions",
            Some(request),
            &[("idempotency-key", idempotency_key)],
        )
        .await
    }

    /// The organisation's sessions, newest first; pass `next_cursor` back for the next page.
    pub async fn list_sessions(
        &self,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<SessionList, ClientError> {
        let mut path = format!("/v1/sessions?limit={}", limit.unwrap_or(50));
        if let Some(cursor) = cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        self.call(Method::GET, &path, None::<&()>, &[]).await
    }

    /// One session.
    pub async fn get_session(&self, session_id: &str) -> Result<SessionInfo, ClientError> {
        self.call(
            Method::GET,
            &format!("/v1/sessions/{session_id}"),
            None::<&()>,
            &[],
        )
        .await
    }

    /// Deletes a session, its sandbox and its events.
    pub async fn delete_session(&self, session_id: &str) -> Result<(), ClientError> {
        self.call(
            Method::DELETE,
            &format!("/v1/sessions/{session_id}"),
            None::<&()>,
            &[],
        )
        .await
    }

    /// Pauses a session; answers once it is paused.
    pub async fn pause(&self, session_id: &str) -> Result<SessionInfo, ClientError> {
        self.call(
            Method::POST,
            &format!("/v1/sessions/{session_id}/pause"),
            None::<&()>,
            &[],
        )
        .await
    }

    /// Resumes a session; answers once it runs.
    pub async fn resume(&self, session_id: &str) -> Result<SessionInfo, ClientError> {
        self.call(
            Method::POST,
            &format!("/v1/sessions/{session_id}/resume"),
            None::<&()>,
            &[],
        )
        .await
    }

    /// Saves a snapshot that new sessions can start from.
    pub async fn snapshot(&self, session_id: &str) -> Result<SnapshotInfo, ClientError> {
        self.call(
            Method::POST,
            &format!("/v1/sessions/{session_id}/snapshot"),
            None::<&()>,
            &[],
        )
        .await
    }

    /// Sends a prompt over HTTP (the same admission as a connection's `send_prompt`).
    pub async fn send_message(
        &self,
        session_id: &str,
        request: &SendMessageRequest,
    ) -> Result<PromptAdmission, ClientError> {
        let mut request = request.clone();
        request
            .source
            .get_or_insert_with(|| self.settings.source.clone());
        self.call(
            Method::POST,
            &format!("/v1/sessions/{session_id}/messages"),
            Some(&request),
            &[],
        )
        .await
    }

    /// Cancels the running turn; false when none ran.
    pub async fn cancel(&self, session_id: &str) -> Result<bool, ClientError> {
        let outcome: CancelOutcome = self
            .call(
                Method::POST,
                &format!("/v1/sessions/{session_id}/cancel"),
                None::<&()>,
                &[],
            )
            .await?;
        Ok(outcome.cancelled)
    }

    /// Withdraws a queued prompt.
    pub async fn cancel_queued(
        &self,
        session_id: &str,
        prompt_id: &str,
    ) -> Result<(), ClientError> {
        self.call(
            Method::DELETE,
            &format!("/v1/sessions/{session_id}/messages/{prompt_id}"),
            None::<&()>,
            &[],
        )
        .await
    }

    /// Answers a permission request.
    pub async fn reply_permission(
        &self,
        session_id: &str,
        permission_id: &str,
        decision: PermissionDecision,
    ) -> Result<(), ClientError> {
        let body = PermissionReplyRequest { decision };
        self.call(
            Method::POST,
            &format!("/v1/sessions/{session_id}/permissions/{permission_id}"),
            Some(&body),
            &[],
        )
        .await
    }

    /// A page of events after `after_seq`.
    pub async fn events(
        &self,
        session_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<EventPage, ClientError> {
        let path = format!("/v1/sessions/{session_id}/events?after_seq={after_seq}&limit={limit}");
        self.call(Method::GET, &path, None::<&()>, &[]).await
    }

    /// The session's transcript, as the gateway folds it.
    pub async fn transcript(&self, session_id: &str) -> Result<Transcript, ClientError> {
        self.call(
            Method::GET,
            &format!("/v1/sessions/{session_id}/transcript"),
            None::<&()>,
            &[],
        )
        .await
    }

    /// What the session's agent spent on models: tokens and cost, in all and per model.
    pub async fn usage(&self, session_id: &str) -> Result<UsageReport, ClientError> {
        self.call(
            Method::GET,
            &format!("/v1/sessions/{session_id}/usage"),
            None::<&()>,
            &[],
        )
        .await
    }

    /// What the organisation's sessions spent on models between `from` and `to` (milliseconds
    /// since the Unix epoch, either open); needs the `admin` scope.
    pub async fn organization_usage(
        &self,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<UsageReport, ClientError> {
        let bounds: Vec<String> = [("from", from), ("to", to)]
            .into_iter()
            .filter_map(|(name, value)| Some(format!("{name}={}", value?)))
            .collect();
        let path = format!("/v1/usage?{}", bounds.join("&"));
        self.call(Method::GET, &path, None::<&()>, &[]).await
    }

    /// Revokes the organisation's tokens whose `jti` is `jti`, for good; needs the `admin` scope.
    pub async fn revoke_token(&self, jti: &str) -> Result<(), ClientError> {
        let body = RevokeTokenRequest {
            jti: jti.to_owned(),
            ..Default::default()
        };
        self.call(Method::POST, "/v1/tokens/revoke", Some(&body), &[])
            .await
    }

    /// Opens a live connection to a session, replaying from `options.after_seq`; it reconnects
    /// by itself and never yields a seq twice.
    pub fn connect(&self, session_id: &str, options: ConnectionOptions) -> Connection {
        Connection::open(self.clone(), session_id.to_owned(), options)
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }
}
