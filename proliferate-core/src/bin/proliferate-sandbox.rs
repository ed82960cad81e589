//! `proliferate-sandbox sandbox-init ...`: the first program inside a bubblewrap sandbox, for
//! gateways that embed `proliferate-core` in a program that does not answer `sandbox-init` itself.

use std::process::ExitCode;

use proliferate_core::sandbox::helper;

fn main() -> ExitCode {
    let mut arguments = std::env::args_os().skip(1);
    match arguments.next() {
        Some(word) if word == helper::SUBCOMMAND => helper::main(arguments.collect()),
        _ => {
            eprintln!(
                "usage: proliferate-sandbox {} [options] -- PROGRAM [ARGS]",
                helper::SUBCOMMAND
            );
            ExitCode::from(2)
        }
    }
}
