//! `proliferate-codegen [--check]`: writes every binding's generated files, or with `--check`
//! lists those that drifted and fails.

use std::process::ExitCode;

fn main() -> ExitCode {
    let root = proliferate_codegen::repository();
    if std::env::args().any(|argument| argument == "--check") {
        let drifted = proliferate_codegen::drifted(&root);
        for path in &drifted {
            eprintln!("{path} drifted from the schema: run `cargo run -p proliferate-codegen`");
        }
        return if drifted.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    for (path, contents) in proliferate_codegen::outputs() {
        if let Err(error) = std::fs::write(root.join(path), contents) {
            eprintln!("writing {path}: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
