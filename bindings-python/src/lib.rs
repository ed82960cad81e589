//! The native half of the `proliferate` Python package: conversion, async bridging and error
//! mapping over `proliferate-client`. Values cross as JSON text that the Rust protocol types have
//! validated; the Python layer in `python/proliferate` turns them into typed objects and is the
//! public API.

mod client;
mod connection;
mod error;
mod protocol;
mod runtime;

use pyo3::prelude::*;

/// The `proliferate._native` module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<client::NativeClient>()?;
    module.add_class::<connection::NativeConnection>()?;
    module.add_class::<connection::NativeSubscription>()?;
    module.add_class::<protocol::NativeReducer>()?;
    module.add_function(wrap_pyfunction!(protocol::normalize, module)?)?;
    module.add_function(wrap_pyfunction!(runtime::shutdown, module)?)?;
    Ok(())
}
