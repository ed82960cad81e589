//! The sandbox helper: the first program inside a bubblewrap sandbox. It installs the seccomp
//! filter and the resource limits, binds the agent's end of the session channel, starts the agent,
//! and exits with it.
//!
//! The channel: the gateway reaches the agent through a Unix socket the helper binds in the
//! sandbox's channel folder, bridged to the agent's port on the sandbox's own loopback. The
//! other way, each `--forward PORT=SOCKET` listens on the sandbox's loopback and carries
//! connections to a socket the gateway serves (the egress proxy, the model).
//!
//! Run as `<program> sandbox-init [options] -- AGENT [ARGS...]`; the reference server and the
//! `proliferate-sandbox` binary both answer to it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use nix::sys::resource::{Resource, setrlimit};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// The word that selects the helper on a program's command line.
pub const SUBCOMMAND: &str = "sandbox-init";

/// What the helper was asked to do.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    agent_socket: PathBuf,
    agent_port: u16,
    forwards: Vec<(u16, PathBuf)>,
    open_files: Option<u64>,
    file_bytes: Option<u64>,
    program: Vec<OsString>,
}

fn parse(arguments: Vec<OsString>) -> Result<Plan, String> {
    let mut plan = Plan::default();
    let mut arguments = arguments.into_iter();
    while let Some(flag) = arguments.next() {
        if flag == "--" {
            plan.program = arguments.collect();
            break;
        }
        let value = arguments
            .next()
            .and_then(|value| value.into_string().ok())
            .ok_or_else(|| format!("{} needs a value", flag.to_string_lossy()))?;
        let number = |text: &str| {
            text.parse::<u64>()
                .map_err(|_| format!("{text:?} is not a number"))
        };
        match flag.to_str() {
            Some("--agent-socket") => plan.agent_socket = value.into(),
            Some("--agent-port") => plan.agent_port = number(&value)? as u16,
            Some("--open-files") => plan.open_files = Some(number(&value)?),
            Some("--file-bytes") => plan.file_bytes = Some(number(&value)?),
            Some("--forward") => {
                let (port, socket) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--forward {value:?} is not PORT=SOCKET"))?;
                plan.forwards.push((number(port)? as u16, socket.into()));
            }
            _ => return Err(format!("unknown option {}", flag.to_string_lossy())),
        }
    }
    if plan.program.is_empty() || plan.agent_port == 0 || plan.agent_socket.as_os_str().is_empty() {
        return Err("usage: sandbox-init --agent-socket PATH --agent-port PORT \
                    [--forward PORT=SOCKET]... [--open-files N] [--file-bytes N] -- PROGRAM [ARGS]"
            .into());
    }
    Ok(plan)
}

/// Runs the helper with the arguments after [`SUBCOMMAND`]; returns the agent's exit status.
pub fn main(arguments: Vec<OsString>) -> ExitCode {
    if arguments.first().is_some_and(|first| first == "--version") {
        println!("proliferate-sandbox {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match run(arguments) {
        Ok(code) => code,
        Err(problem) => {
            eprintln!("proliferate-sandbox: {problem}");
            ExitCode::from(125)
        }
    }
}

fn run(arguments: Vec<OsString>) -> Result<ExitCode, String> {
    let plan = parse(arguments)?;
    for (resource, limit) in [
        (Resource::RLIMIT_NOFILE, plan.open_files),
        (Resource::RLIMIT_FSIZE, plan.file_bytes),
        (Resource::RLIMIT_CORE, Some(0)),
    ] {
        if let Some(limit) = limit {
            setrlimit(resource, limit, limit).map_err(|error| format!("{resource:?}: {error}"))?;
        }
    }
    super::seccomp::install().map_err(|error| error.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("starting the runtime: {error}"))?;
    runtime.block_on(serve(plan))
}

async fn serve(plan: Plan) -> Result<ExitCode, String> {
    let _ = std::fs::remove_file(&plan.agent_socket);
    let agent_socket = UnixListener::bind(&plan.agent_socket)
        .map_err(|error| format!("binding {}: {error}", plan.agent_socket.display()))?;
    let agent_port = plan.agent_port;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = agent_socket.accept().await {
            tokio::spawn(async move {
                if let Ok(mut agent) = TcpStream::connect(("127.0.0.1", agent_port)).await {
                    let _ = copy_bidirectional(&mut inbound, &mut agent).await;
                }
            });
        }
    });
    for (port, socket) in plan.forwards {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|error| format!("listening on port {port}: {error}"))?;
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let socket = socket.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = UnixStream::connect(&socket).await {
                        let _ = copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
    }
    let (program, arguments) = plan.program.split_first().expect("checked by parse");
    let status = tokio::process::Command::new(program)
        .args(arguments)
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|error| format!("starting {}: {error}", program.to_string_lossy()))?;
    Ok(status
        .code()
        .map_or(ExitCode::from(137), |code| ExitCode::from(code as u8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<OsString> {
        text.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn parses_a_full_command_line() {
        let plan = parse(words(
            "--agent-socket /run/a.sock --agent-port 4096 --forward 3128=/run/e.sock \
             --open-files 1024 --file-bytes 99 -- opencode serve --port 4096",
        ))
        .unwrap();
        assert_eq!(plan.agent_socket, PathBuf::from("/run/a.sock"));
        assert_eq!(plan.agent_port, 4096);
        assert_eq!(plan.forwards, vec![(3128, PathBuf::from("/run/e.sock"))]);
        assert_eq!((plan.open_files, plan.file_bytes), (Some(1024), Some(99)));
        assert_eq!(plan.program, words("opencode serve --port 4096"));
    }

    #[test]
    fn refuses_incomplete_or_unknown_options() {
        assert!(parse(words("--agent-port 1 -- x")).is_err());
        assert!(parse(words("--agent-socket /a --agent-port 1")).is_err());
        assert!(parse(words("--agent-socket /a --agent-port 1 --bogus 1 -- x")).is_err());
        assert!(parse(words("--agent-socket /a --agent-port x -- x")).is_err());
        assert!(parse(words("--agent-socket /a --agent-port 1 --forward 80 -- x")).is_err());
    }
}
