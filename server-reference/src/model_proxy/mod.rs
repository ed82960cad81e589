//! The model proxy: the only way a sandbox reaches a model. It is served into every sandbox over
//! the session's channel (a port of the sandbox's own loopback), takes the sandbox's token, and
//! forwards OpenAI chat completions and Anthropic messages to the real provider with the real key,
//! which never leaves the gateway. Responses stream through as they arrive; their usage is
//! metered into the store; the policy refuses models not allowed and sessions or organisations
//! whose budget is spent. `docs/security.md` says what it protects.

pub mod meter;
pub mod policy;
pub mod upstream;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use proliferate_core::protocol::v1::{SessionInfo, TokenUsage, UsageReport};
use proliferate_core::sandbox::{ChannelService, Connection};
use proliferate_core::{Gateway, GatewayError};
use serde_json::{Value, json};

use meter::{Metered, UsageMeter};
use policy::ModelPolicy;
use upstream::{Key, MODEL_PROXY_VARIABLE, Surface, Upstream};

/// The model proxy's port on every sandbox's loopback.
pub const MODEL_PROXY_PORT: u16 = 4100;

/// The largest request body forwarded.
const MAX_REQUEST: usize = 32 << 20;

/// Keys of organisations that bring their own, by organisation then provider.
pub type OrganizationKeys = HashMap<String, HashMap<String, String>>;

/// What the proxy asks of the gateway: whose sandbox a token belongs to, what it spent, and
/// what a request used. The engine's [`Gateway`] answers in the server.
#[async_trait]
pub trait ProxySessions: Send + Sync {
    /// The session whose current sandbox token is `token`, for a request over `session_id`'s
    /// channel.
    async fn sandbox_session(
        &self,
        token: &str,
        session_id: &str,
    ) -> Result<SessionInfo, GatewayError>;

    /// What the session and its organisation spent so far.
    async fn spent(
        &self,
        session: &SessionInfo,
    ) -> Result<(UsageReport, UsageReport), GatewayError>;

    /// Records one request's usage.
    async fn record_usage(
        &self,
        session: &SessionInfo,
        model: &str,
        usage: &TokenUsage,
    ) -> Result<(), GatewayError>;
}

#[async_trait]
impl ProxySessions for Gateway {
    async fn sandbox_session(
        &self,
        token: &str,
        session_id: &str,
    ) -> Result<SessionInfo, GatewayError> {
        Gateway::sandbox_session(self, token, session_id).await
    }

    async fn spent(
        &self,
        session: &SessionInfo,
    ) -> Result<(UsageReport, UsageReport), GatewayError> {
        Gateway::spent(self, session).await
    }

    async fn record_usage(
        &self,
        session: &SessionInfo,
        model: &str,
        usage: &TokenUsage,
    ) -> Result<(), GatewayError> {
        Gateway::record_usage(self, session, model, usage).await
    }
}

/// The gateway's model proxy.
pub struct ModelProxy {
    sessions: OnceLock<Arc<dyn ProxySessions>>,
    upstreams: HashMap<String, Upstream>,
    organization_keys: OrganizationKeys,
    policy: Arc<ModelPolicy>,
    http: reqwest::Client,
    metrics: ModelMetrics,
}

/// A refused or failed request, answered in the shape of the surface's own errors.
struct Refusal {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    fn answer(self, surface: Surface) -> Response<Body> {
        let body = surface.error(self.kind, &self.message);
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response
    }
}

impl std::fmt::Debug for ModelProxy {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ModelProxy")
            .field("upstreams", &self.upstreams)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl ModelProxy {
    /// A proxy for `upstreams` under `policy`; it answers once [`ModelProxy::attach`] gave it
    /// the gateway.
    /// A provider that sends nothing for `read_timeout` is given up on: before its answer
    /// began, with `504`; in the middle of a stream, with an error event in the surface's own
    /// shape.
    pub fn new(
        upstreams: HashMap<String, Upstream>,
        organization_keys: OrganizationKeys,
        policy: ModelPolicy,
        read_timeout: Duration,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(read_timeout)
            .build()
            .unwrap_or_default();
        Self {
            sessions: OnceLock::new(),
            upstreams,
            organization_keys,
            policy: Arc::new(policy),
            http,
            metrics: ModelMetrics::default(),
        }
    }

    /// Gives the proxy the sessions it serves (the gateway).
    pub fn attach(&self, sessions: Arc<dyn ProxySessions>) {
        let _ = self.sessions.set(sessions);
    }

    /// Whether sessions may use `model` (`provider/model`): its provider is behind the proxy and
    /// the policy allows it.
    pub fn serves(&self, model: &str) -> bool {
        let provider = model.split('/').next().unwrap_or_default();
        self.upstreams.contains_key(provider) && self.policy.allows(model)
    }

    /// Its counters, in Prometheus text format.
    pub fn metrics(&self) -> String {
        self.metrics.render()
    }

    async fn handle(&self, session_id: &str, request: Request<Body>) -> Response<Body> {
        let path = request.uri().path().trim_start_matches('/').to_owned();
        let (provider, route) = path.split_once('/').unwrap_or((&path, ""));
        let surface = match route {
            "chat/completions" => Surface::OpenAi,
            "messages" => Surface::Anthropic,
            _ => {
                return Refusal::new(StatusCode::NOT_FOUND, "not_found", "no such route")
                    .answer(Surface::OpenAi);
            }
        };
        self.forward(session_id, provider, surface, request)
            .await
            .unwrap_or_else(|refusal| {
                let counter = match refusal.status.is_server_error() {
                    true => &self.metrics.failed,
                    false => &self.metrics.refused,
                };
                counter.fetch_add(1, Relaxed);
                tracing::warn!(session_id, provider, status = refusal.status.as_u16(), reason = %refusal.message, "model request refused");
                refusal.answer(surface)
            })
    }

    async fn forward(
        &self,
        session_id: &str,
        provider: &str,
        surface: Surface,
        request: Request<Body>,
    ) -> Result<Response<Body>, Refusal> {
        let upstream = self
            .upstreams
            .get(provider)
            .filter(|upstream| upstream.surface == surface)
            .ok_or_else(|| {
                Refusal::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no provider {provider} with this API behind the model proxy"),
                )
            })?;
        if request.method() != Method::POST {
            return Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "POST only",
            ));
        }
        let gateway = self.sessions.get().ok_or_else(|| {
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the gateway is starting",
            )
        })?;
        let unauthenticated = |message: String| {
            Refusal::new(StatusCode::UNAUTHORIZED, "authentication_error", message)
        };
        let token = sandbox_token(request.headers())
            .ok_or_else(|| unauthenticated("no sandbox token".into()))?;
        let session = gateway
            .sandbox_session(&token, session_id)
            .await
            .map_err(|error| unauthenticated(error.to_string()))?;
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, MAX_REQUEST).await.map_err(|_| {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "the request is too large",
            )
        })?;
        let mut body: Value = serde_json::from_slice(&body).map_err(|_| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the body is not JSON",
            )
        })?;
        let model = format!("{provider}/{}", body["model"].as_str().unwrap_or_default());
        if !self.policy.allows(&model) {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                format!("model {model} is not allowed on this server"),
            ));
        }
        if self.policy.has_budget() {
            let (spent_by_session, spent_by_organization) =
                gateway.spent(&session).await.map_err(|error| {
                    Refusal::new(StatusCode::BAD_GATEWAY, "api_error", error.to_string())
                })?;
            if let Some(refusal) = self
                .policy
                .refusal(&spent_by_session, &spent_by_organization)
            {
                return Err(Refusal::new(
                    StatusCode::PAYMENT_REQUIRED,
                    "budget_exceeded",
                    refusal,
                ));
            }
        }
        let streamed = body["stream"] == true;
        if surface == Surface::OpenAi && streamed {
            body["stream_options"]["include_usage"] = json!(true);
        }
        let route = match surface {
            Surface::OpenAi => "chat/completions",
            Surface::Anthropic => "messages",
        };
        let mut outbound = self
            .http
            .post(format!("{}/{route}", upstream.base_url))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        for name in ["accept", "anthropic-version", "anthropic-beta"] {
            if let Some(value) = parts.headers.get(name) {
                outbound = outbound.header(name, value);
            }
        }
        if let Some(key) = self.key(&session.organization_id, provider, upstream) {
            outbound = match surface {
                Surface::OpenAi => outbound.bearer_auth(key),
                Surface::Anthropic => outbound.header("x-api-key", key),
            };
        }
        let answer = outbound
            .send()
            .await
            .map_err(|error| match error.is_timeout() {
                true => Refusal::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout_error",
                    "the model provider did not answer in time",
                ),
                false => Refusal::new(
                    StatusCode::BAD_GATEWAY,
                    "api_error",
                    format!(
                        "the model provider could not be reached: {}",
                        error.without_url()
                    ),
                ),
            })?;
        let status = answer.status();
        tracing::info!(session_id, model, status = status.as_u16(), "model request");
        let mut response = Response::builder().status(status.as_u16());
        for name in [header::CONTENT_TYPE, header::RETRY_AFTER] {
            if let Some(value) = answer.headers().get(&name) {
                response = response.header(name, value);
            }
        }
        let meter = UsageMeter::new(surface, streamed);
        let on_end = self.on_end(gateway.clone(), session, model, status.is_success());
        let upstream = answer.bytes_stream();
        let body = Metered::new(
            ending_in_an_error_event(upstream, surface, streamed),
            meter,
            on_end,
        );
        Ok(response
            .body(Body::from_stream(body))
            .unwrap_or_else(|_| Response::new(Body::empty())))
    }

    /// What to do when a response ends: count it, and record its usage with its cost.
    fn on_end(
        &self,
        gateway: Arc<dyn ProxySessions>,
        session: SessionInfo,
        model: String,
        succeeded: bool,
    ) -> meter::OnEnd {
        let policy = self.policy.clone();
        let metrics = self.metrics.clone_handle();
        Box::new(move |usage, complete| {
            metrics.count(succeeded && complete);
            let Some(mut usage) = usage else {
                return;
            };
            usage.cost = policy.cost(&model, &usage);
            metrics.add(&usage);
            tokio::spawn(async move {
                if let Err(error) = gateway.record_usage(&session, &model, &usage).await {
                    tracing::error!(session_id = %session.id, error = %error, "recording model usage failed");
                }
            });
        })
    }

    /// The key for `provider`: the organisation's own, else the server's.
    fn key(&self, organization_id: &str, provider: &str, upstream: &Upstream) -> Option<String> {
        if let Some(key) = self
            .organization_keys
            .get(organization_id)
            .and_then(|keys| keys.get(provider))
        {
            return Some(key.clone());
        }
        match upstream.key.as_ref()? {
            Key::Variable(name) => std::env::var(name).ok(),
            Key::Value(value) => Some(value.clone()),
        }
    }
}

/// `upstream`, except that a streamed answer that breaks (the provider went silent past the read
/// timeout, or its connection dropped) ends with an error event the agent reports, instead of a
/// cut the agent can only call "terminated".
fn ending_in_an_error_event(
    upstream: impl futures::Stream<Item = Result<bytes::Bytes, reqwest::Error>>,
    surface: Surface,
    streamed: bool,
) -> impl futures::Stream<Item = Result<bytes::Bytes, reqwest::Error>> {
    use futures::StreamExt;
    upstream.scan(false, move |broken, item| {
        let next = match item {
            _ if *broken => None,
            Err(error) if streamed => {
                *broken = true;
                let message = match error.is_timeout() {
                    true => "the model provider went silent in the middle of its answer".to_owned(),
                    false => format!(
                        "the model provider's answer broke off: {}",
                        error.without_url()
                    ),
                };
                Some(Ok(surface.stream_error("timeout_error", &message)))
            }
            item => Some(item),
        };
        std::future::ready(next)
    })
}

/// The sandbox token of a request: `Authorization: Bearer` (OpenAI) or `x-api-key` (Anthropic).
fn sandbox_token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let api_key = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok());
    bearer.or(api_key).map(|token| token.trim().to_owned())
}

/// The proxy as a service of every sandbox's channel.
#[derive(Debug, Clone)]
pub struct ModelProxyService(pub Arc<ModelProxy>);

#[async_trait]
impl ChannelService for ModelProxyService {
    fn port(&self) -> u16 {
        MODEL_PROXY_PORT
    }

    fn address_variable(&self) -> Option<&str> {
        Some(MODEL_PROXY_VARIABLE)
    }

    async fn serve(&self, session_id: String, connection: Box<dyn Connection>) {
        let proxy = self.0.clone();
        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let (proxy, session_id) = (proxy.clone(), session_id.clone());
            async move {
                let request = request.map(Body::new);
                Ok::<_, Infallible>(proxy.handle(&session_id, request).await)
            }
        });
        let connection = hyper_util::rt::TokioIo::new(connection);
        if let Err(error) = hyper::server::conn::http1::Builder::new()
            .serve_connection(connection, service)
            .await
        {
            tracing::debug!(error = %error, "model proxy connection ended");
        }
    }
}

/// The proxy's counters.
#[derive(Debug, Default)]
struct ModelMetrics {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    completed: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    input: AtomicU64,
    output: AtomicU64,
    reasoning: AtomicU64,
    cache_read: AtomicU64,
    cache_write: AtomicU64,
    cost_microdollars: AtomicU64,
}

impl std::ops::Deref for ModelMetrics {
    type Target = Counters;
    fn deref(&self) -> &Counters {
        &self.inner
    }
}

impl ModelMetrics {
    fn clone_handle(&self) -> ModelMetrics {
        ModelMetrics {
            inner: self.inner.clone(),
        }
    }

    fn count(&self, succeeded: bool) {
        let counter = if succeeded {
            &self.completed
        } else {
            &self.failed
        };
        counter.fetch_add(1, Relaxed);
    }

    fn add(&self, usage: &TokenUsage) {
        self.input.fetch_add(usage.input, Relaxed);
        self.output.fetch_add(usage.output, Relaxed);
        self.reasoning.fetch_add(usage.reasoning, Relaxed);
        self.cache_read.fetch_add(usage.cache_read, Relaxed);
        self.cache_write.fetch_add(usage.cache_write, Relaxed);
        let micro = (usage.cost.unwrap_or_default() * 1_000_000.0).round() as u64;
        self.cost_microdollars.fetch_add(micro, Relaxed);
    }

    fn render(&self) -> String {
        let family = |name: &str, help: &str, label: &str, counters: &[(&str, &AtomicU64)]| {
            let mut text = format!("# HELP {name} {help}\n# TYPE {name} counter\n");
            for (value, counter) in counters {
                text.push_str(&format!(
                    "{name}{{{label}=\"{value}\"}} {}\n",
                    counter.load(Relaxed)
                ));
            }
            text
        };
        let mut text = family(
            "proliferate_model_requests_total",
            "Model requests through the model proxy, by outcome.",
            "outcome",
            &[
                ("completed", &self.completed),
                ("failed", &self.failed),
                ("refused", &self.refused),
            ],
        );
        text.push_str(&family(
            "proliferate_model_tokens_total",
            "Tokens metered by the model proxy, by kind.",
            "kind",
            &[
                ("input", &self.input),
                ("output", &self.output),
                ("reasoning", &self.reasoning),
                ("cache_read", &self.cache_read),
                ("cache_write", &self.cache_write),
            ],
        ));
        text.push_str(&format!(
            "# HELP proliferate_model_cost_dollars_total Cost of priced model requests, in US dollars.\n\
             # TYPE proliferate_model_cost_dollars_total counter\n\
             proliferate_model_cost_dollars_total {}\n",
            self.cost_microdollars.load(Relaxed) as f64 / 1_000_000.0
        ));
        text
    }
}
