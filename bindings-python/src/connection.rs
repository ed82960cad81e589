//! A live connection: a pull-based stream of updates plus the calls that act on it.

use std::sync::Arc;

use proliferate_client::protocol::v1::PermissionDecision;
use proliferate_client::{ClientError, Connection, PromptOptions};
use pyo3::prelude::*;

use crate::client::awaitable;
use crate::protocol::parse;
use crate::runtime;

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
