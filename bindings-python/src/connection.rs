//! A live connection: a pull-based stream of updates, the client's push subscription, and the
//! calls that act on it.

use std::sync::Arc;

use proliferate_client::protocol::v1::PermissionDecision;
use proliferate_client::{ClientError, Connection, Listener, PromptOptions, Subscription, Update};
use pyo3::prelude::*;

use crate::client::awaitable;
use crate::error::to_python;
use crate::protocol::parse;
use crate::runtime;

/// Hands a subscription's updates to the application's `deliver(update, error)`, on a runtime
/// thread: each update as JSON, then `(None, None)` once the connection closed, or an error once
/// it failed for good.
struct Forward(Py<PyAny>);

impl Forward {
    fn deliver(&self, update: Option<String>, error: Option<ClientError>) {
        runtime::with_python((update, error), |py, (update, error)| {
            let error = error.map(|error| to_python(error).into_value(py));
            // A failing `deliver` has nobody to tell here; the facade's own catches it.
            let _ = self.0.call1(py, (update, error));
        });
    }
}

impl Listener for Forward {
    fn on_update(&self, update: Update) {
        self.deliver(
            Some(serde_json::to_string(&update).unwrap_or_default()),
            None,
        );
    }

    fn on_error(&self, error: ClientError) {
        self.deliver(None, Some(error));
    }

    fn on_closed(&self) {
        self.deliver(None, None);
    }
}

/// The client's push subscription (`NativeConnection.subscribe`). Cancelling it, or dropping
/// it, stops the deliveries.
#[pyclass(frozen, module = "proliferate._native")]
pub(crate) struct NativeSubscription {
    subscription: Subscription,
}

#[pymethods]
impl NativeSubscription {
    /// Stops the deliveries now; nothing more is delivered, the close included.
    fn cancel(&self) {
        self.subscription.cancel();
    }

    /// True once the subscription ended: the connection closed or failed, or it was cancelled.
    #[getter]
    fn is_finished(&self) -> bool {
        self.subscription.is_finished()
    }
}

/// One connection to a session. Dropping it closes the socket.
#[pyclass(frozen, module = "proliferate._native")]
pub(crate) struct NativeConnection {
    connection: Arc<Connection>,
}

impl NativeConnection {
    pub(crate) fn new(connection: Connection) -> Self {
        Self {
            connection: Arc::new(connection),
        }
    }
}

#[pymethods]
impl NativeConnection {
    /// Delivers every update to `deliver(update, error)` (see `Connection::subscribe`), the push
    /// alternative to `next_batch`; read a connection one way at a time.
    fn subscribe(&self, deliver: Py<PyAny>) -> NativeSubscription {
        let _runtime = runtime::RUNTIME.enter();
        let subscription = self.connection.subscribe(Arc::new(Forward(deliver)));
        NativeSubscription { subscription }
    }

    /// The next updates (see `Connection::next_batch`), at most `limit`, as one JSON array of
    /// `Update`s, or `None` once closed.
    fn next_batch<'py>(&self, py: Python<'py>, limit: usize) -> PyResult<Bound<'py, PyAny>> {
        let connection = self.connection.clone();
        runtime::spawn(py, async move {
            let batch = connection.next_batch(limit).await.transpose()?;
            Ok(batch.map(|updates| serde_json::to_string(&updates).unwrap_or_default()))
        })
    }

    /// The session this connection follows.
    #[getter]
    fn session_id(&self) -> &str {
        self.connection.session_id()
    }

    /// Sends a prompt and resolves to its admission (JSON) once the gateway admits it.
    #[pyo3(signature = (content, prompt_id=None, images=Vec::new()))]
    fn send_prompt<'py>(
        &self,
        py: Python<'py>,
        content: String,
        prompt_id: Option<String>,
        images: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let connection = self.connection.clone();
        awaitable(py, async move {
            connection
                .send_prompt(content, PromptOptions { prompt_id, images })
                .await
        })
    }

    /// Cancels the running turn; resolves to false when none ran.
    fn cancel<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let connection = self.connection.clone();
        awaitable(py, async move { connection.cancel().await })
    }

    /// Withdraws a queued prompt.
    fn cancel_queued<'py>(
        &self,
        py: Python<'py>,
        prompt_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let connection = self.connection.clone();
        awaitable(
            py,
            async move { connection.cancel_queued(&prompt_id).await },
        )
    }

    /// Answers a permission request with `once`, `always` or `reject`.
    fn reply_permission<'py>(
        &self,
        py: Python<'py>,
        permission_id: String,
        decision: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let decision: PermissionDecision = parse(&serde_json::Value::from(decision).to_string())?;
        let connection = self.connection.clone();
        awaitable(py, async move {
            connection.reply_permission(&permission_id, decision).await
        })
    }

    /// Asks the gateway for everyone connected; the answer arrives as a `presence` update.
    fn request_presence<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let connection = self.connection.clone();
        awaitable(py, async move { connection.request_presence().await })
    }

    /// Closes the socket and stops reconnecting; `next` then resolves to `None`.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let connection = self.connection.clone();
        awaitable(py, async move {
            connection.close().await;
            Ok::<_, ClientError>(())
        })
    }
}
