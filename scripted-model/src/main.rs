//! `scripted-model [--port N] [--script-file PATH]`: serves scripted answers on
//! `127.0.0.1` until SIGTERM or Ctrl-C, after printing
//! `listening on http://127.0.0.1:PORT/v1`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use scripted_model::{ScriptLibrary, ScriptedModel};

const USAGE: &str = "usage: scripted-model [--port N] [--script-file PATH]";

/// The command line.
struct Args {
    port: u16,
    script_file: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        port: 0,
        script_file: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                parsed.port = value
                    .parse()
                    .map_err(|_| format!("--port: invalid port {value:?}"))?;
            }
            "--script-file" => {
                let value = args.next().ok_or("--script-file needs a value")?;
                parsed.script_file = Some(PathBuf::from(value));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) if problem.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("scripted-model: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let library = match &args.script_file {
        Some(path) => match ScriptLibrary::from_file(path) {
            Ok(library) => library,
            Err(error) => {
                eprintln!("scripted-model: {error}");
                return ExitCode::FAILURE;
            }
        },
        None => ScriptLibrary::default(),
    };
    let model = match ScriptedModel::start_on(args.port, library).await {
        Ok(model) => model,
        Err(error) => {
            eprintln!(
                "scripted-model: cannot listen on port {}: {error}",
                args.port
            );
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "listening on {}", model.base_url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    termination().await;
    drop(model);
    // Give open connections a moment to close cleanly.
    tokio::time::sleep(Duration::from_millis(200)).await;
    ExitCode::SUCCESS
}

/// Resolves at Ctrl-C or, on Unix, SIGTERM.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
