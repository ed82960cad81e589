//! One generator for every binding's wire types: it reads the protocol's JSON Schema
//! (`proliferate_core::protocol::v1::wire_schema`, committed as `docs/schema/v1.json`) and writes
//! the Python dataclasses and exception classes, the TypeScript types, and the Swift records.
//! `cargo run -p proliferate-codegen` writes them; `--check` fails when a file drifted, and every
//! suite runs it.

mod python;
mod schema;
mod swift;
mod typescript;

use std::path::{Path, PathBuf};

pub use schema::Schema;

/// The repository this generator was built in.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every generated file: its path in the repository and its contents.
pub fn outputs() -> Vec<(&'static str, String)> {
    let schema = Schema::v1();
    vec![
        (
            "bindings-python/python/proliferate/types.py",
            python::types(&schema),
        ),
        (
            "bindings-python/python/proliferate/errors.py",
            python::errors(),
        ),
        ("bindings-node/lib/types.ts", typescript::types(&schema)),
        ("bindings-swift/src/wire.rs", swift::records(&schema)),
    ]
}

/// The generated files whose contents differ from what is in `root`.
pub fn drifted(root: &Path) -> Vec<&'static str> {
    outputs()
        .into_iter()
        .filter(|(path, contents)| {
            std::fs::read_to_string(root.join(path)).ok().as_ref() != Some(contents)
        })
        .map(|(path, _)| path)
        .collect()
}
