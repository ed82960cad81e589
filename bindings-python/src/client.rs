//! The client: one native object per `proliferate.Client`, every call an awaitable.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use proliferate_client::protocol::v1::{
    CreateSessionRequest, PermissionDecision, SendMessageRequest,
};
use proliferate_client::{Auth, Client, ClientError, ConnectionOptions, TokenSource};
use pyo3::prelude::*;
use serde::Serialize;

use crate::connection::NativeConnection;
use crate::error::{bad_request, to_python};
use crate::protocol::{encode, parse};
use crate::runtime;

/// Runs `call` on the runtime and hands asyncio an awaitable of its answer as JSON text.
pub(crate) fn awaitable<'py, T, F>(py: Python<'py>, call: F) -> PyResult<Bound<'py, PyAny>>
where
    T: Serialize,
    F: Future<Output = Result<T, ClientError>> + Send + 'static,
{
    runtime::spawn(py, async move { encode(&call.await?) })
}

fn seconds(value: Option<f64>) -> PyResult<Option<Duration>> {
    value
        .map(|seconds| Duration::try_from_secs_f64(seconds).map_err(bad_request))
        .transpose()
}

/// Tokens from the application: `source(refresh) -> str`, called on a blocking thread of the
/// runtime, since it may wait for the application's event loop.
struct PythonTokenSource(Arc<Py<PyAny>>);

#[async_trait::async_trait]
impl TokenSource for PythonTokenSource {
    async fn token(&self, refresh: bool) -> Result<String, ClientError> {
        let source = self.0.clone();
        let call = move || Python::attach(|py| source.call1(py, (refresh,))?.extract(py));
        match tokio::task::spawn_blocking(call).await {
            Ok(Ok(token)) => Ok(token),
            Ok(Err(error)) => Err(ClientError::token_source_failed(error)),
            Err(error) => Err(ClientError::token_source_failed(error)),
        }
    }
}

/// A client of one gateway.
#[pyclass(frozen, module = "proliferate._native")]
pub(crate) struct NativeClient {
    client: Client,
}

#[pymethods]
impl NativeClient {
    /// Builds a client. Give `token`, `token_source`, or all three service credentials.
    #[new]
    #[pyo3(signature = (
        base_url, *, token=None, token_source=None, service_name=None,
        service_organization=None, service_secret=None, source=None, request_timeout=None,
        liveness_timeout=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        base_url: String,
        token: Option<String>,
        token_source: Option<Py<PyAny>>,
        service_name: Option<String>,
        service_organization: Option<String>,
        service_secret: Option<String>,
        source: Option<String>,
        request_timeout: Option<f64>,
        liveness_timeout: Option<f64>,
    ) -> PyResult<Self> {
        let token_source = token_source
            .map(|source| Arc::new(PythonTokenSource(Arc::new(source))) as Arc<dyn TokenSource>);
        let auth = Auth::from_fields(
            token,
            token_source,
            service_name,
            service_organization,
            service_secret,
        )
        .map_err(to_python)?;
        let mut builder = Client::builder(base_url).auth(auth);
        if let Some(source) = source {
            builder = builder.source(source);
        }
        if let Some(timeout) = seconds(request_timeout)? {
            builder = builder.request_timeout(timeout);
        }
        if let Some(timeout) = seconds(liveness_timeout)? {
            builder = builder.liveness_timeout(timeout);
        }
        Ok(Self {
            client: builder.build().map_err(to_python)?,
        })
    }

    /// Creates a session from a `CreateSessionRequest` (JSON); idempotent under a key.
    #[pyo3(signature = (request, idempotency_key=None))]
    fn create_session<'py>(
        &self,
        py: Python<'py>,
        request: &str,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request: CreateSessionRequest = parse(request)?;
        let client = self.client.clone();
        awaitable(py, async move {
            match idempotency_key {
                Some(key) => client.create_session_idempotent(&request, &key).await,
                None => client.create_session(&request).await,
            }
        })
    }

    /// Lists sessions, newest first, a page at a time.
    #[pyo3(signature = (limit=None, cursor=None))]
    fn list_sessions<'py>(
        &self,
        py: Python<'py>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move {
            client.list_sessions(limit, cursor.as_deref()).await
        })
    }

    /// One session's info.
    fn get_session<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move { client.get_session(&session_id).await })
    }

    /// Terminates a session and deletes its sandbox.
    fn delete_session<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move { client.delete_session(&session_id).await })
    }

    /// Pauses a session, keeping its state.
    fn pause<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move { client.pause(&session_id).await })
    }

    /// Resumes a paused session.
    fn resume<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move { client.resume(&session_id).await })
    }

    /// Saves a snapshot of a session's workspace.
    fn snapshot<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move { client.snapshot(&session_id).await })
    }

    /// Sends a prompt over HTTP from a `SendMessageRequest` (JSON).
    fn send_message<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
        request: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request: SendMessageRequest = parse(request)?;
        let client = self.client.clone();
        awaitable(py, async move {
            client.send_message(&session_id, &request).await
        })
    }

    /// Cancels the running turn; resolves to false when none ran.
    fn cancel<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move { client.cancel(&session_id).await })
    }

    /// Withdraws a queued prompt.
    fn cancel_queued<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
        prompt_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move {
            client.cancel_queued(&session_id, &prompt_id).await
        })
    }

    /// Answers a permission request with `once`, `always` or `reject`.
    fn reply_permission<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
        permission_id: String,
        decision: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let decision: PermissionDecision = parse(&serde_json::Value::from(decision).to_string())?;
        let client = self.client.clone();
        awaitable(py, async move {
            client
                .reply_permission(&session_id, &permission_id, decision)
                .await
        })
    }

    /// A page of a session's durable events after `after_seq`.
    #[pyo3(signature = (session_id, after_seq=0, limit=500))]
    fn events<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
        after_seq: u64,
        limit: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move {
            client.events(&session_id, after_seq, limit).await
        })
    }

    /// A session's transcript as the server folded it.
    fn transcript<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move { client.transcript(&session_id).await })
    }

    /// What a session's agent spent on models.
    fn usage<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move { client.usage(&session_id).await })
    }

    /// What the organisation's sessions spent on models from `start` to `end`.
    #[pyo3(signature = (start=None, end=None))]
    fn organization_usage<'py>(
        &self,
        py: Python<'py>,
        start: Option<i64>,
        end: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(
            py,
            async move { client.organization_usage(start, end).await },
        )
    }

    /// Opens a live connection that replays after `after_seq`, then follows the session.
    #[pyo3(signature = (session_id, after_seq=0))]
    fn connect(&self, session_id: &str, after_seq: u64) -> NativeConnection {
        let _runtime = runtime::RUNTIME.enter();
        NativeConnection::new(self.client.connect(
            session_id,
            ConnectionOptions {
                after_seq,
                ..ConnectionOptions::default()
            },
        ))
    }
}
