//! The one tokio runtime, and the bridge that turns its futures into asyncio futures.
//!
//! A future's result reaches its event loop through `call_soon_threadsafe`, under the GIL taken
//! on a runtime thread. At interpreter exit `shutdown` (registered with `atexit`) stops new
//! deliveries and waits for those under way, so no runtime thread touches a finalizing
//! interpreter. Cancelling the asyncio future aborts the Rust task.

use std::future::Future;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proliferate_client::ClientError;
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use tokio::runtime::Runtime;

use crate::error::to_python;

/// The runtime every native call runs on.
pub(crate) static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("proliferate")
        .build()
        .expect("the tokio runtime starts")
});

static STOPPING: AtomicBool = AtomicBool::new(false);
static DELIVERING: AtomicUsize = AtomicUsize::new(0);

/// Runs `call` on the runtime; returns an asyncio future of the loop running now that resolves
/// to its value, or raises its error as the `proliferate.errors` exception for its code.
pub(crate) fn spawn<'py, T, F>(py: Python<'py>, call: F) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'any> IntoPyObject<'any> + Send + 'static,
    F: Future<Output = Result<T, ClientError>> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let (target_loop, target) = (event_loop.unbind(), future.clone().unbind());
    let task = RUNTIME.spawn(async move {
        let outcome = call.await;
        deliver(target_loop, target, outcome);
    });
    let abort = task.abort_handle();
    let on_done = PyCFunction::new_closure(py, None, None, move |arguments, _| {
        let done = arguments.get_item(0)?;
        if done.call_method0("cancelled")?.is_truthy()? {
            abort.abort();
        }
        PyResult::Ok(())
    })?;
    future.call_method1("add_done_callback", (on_done,))?;
    Ok(future)
}

/// Hands `outcome` to `target` on its loop, unless the interpreter is exiting.
fn deliver<T: for<'any> IntoPyObject<'any>>(
    target_loop: Py<PyAny>,
    target: Py<PyAny>,
    outcome: Result<T, ClientError>,
) {
    with_python(
        (target_loop, target, outcome),
        |py, (target_loop, target, outcome)| {
            let resolve = PyCFunction::new_closure(py, None, None, resolve);
            let converted = outcome
                .map_err(to_python)
                .and_then(|value| value.into_py_any(py));
            let (ok, value) = match converted {
                Ok(value) => (true, value),
                Err(error) => (false, error.into_value(py).into_any()),
            };
            if let Ok(resolve) = resolve {
                // Fails only when the loop is closed, and then nobody waits for the answer.
                let _ = target_loop.call_method1(
                    py,
                    "call_soon_threadsafe",
                    (resolve, target, ok, value),
                );
            }
        },
    );
}

/// Runs `call` on `objects` under the GIL from a runtime thread, unless the interpreter is
/// exiting: touching its objects then would crash it, so they are leaked instead.
pub(crate) fn with_python<T>(objects: T, call: impl FnOnce(Python<'_>, T)) {
    DELIVERING.fetch_add(1, Ordering::SeqCst);
    if STOPPING.load(Ordering::SeqCst) {
        std::mem::forget(objects);
    } else {
        Python::attach(|py| call(py, objects));
    }
    DELIVERING.fetch_sub(1, Ordering::SeqCst);
}

/// Sets the result or exception of a future that is still waiting.
fn resolve(arguments: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    let (future, ok, value): (Bound<'_, PyAny>, bool, Bound<'_, PyAny>) = arguments.extract()?;
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    let method = if ok { "set_result" } else { "set_exception" };
    future.call_method1(method, (value,))?;
    Ok(())
}

/// Stops deliveries and waits (up to a second) for those under way; called by `atexit`.
#[pyfunction]
pub(crate) fn shutdown(py: Python<'_>) {
    STOPPING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(1);
    py.detach(|| {
        while DELIVERING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}
