//! `proliferate-server`: run the gateway, or mint a development token.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use proliferate_core::auth::claims;
use proliferate_core::protocol::v1::Scope;
use server_reference::{ServeArgs, Server, init_logging};

#[derive(Parser)]
#[command(
    name = "proliferate-server",
    version,
    about = "Run coding agents in sandboxes and stream their work to every client."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway (embedded defaults: SQLite, local sandboxes, OpenCode, scripted model).
    Serve(Box<ServeArgs>),
    /// Print a token signed with the server's secret, for development.
    Token {
        /// The data directory of the server (its secrets live there unless set in the environment).
        #[arg(long, env = "PROLIFERATE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The token's subject.
        #[arg(long, default_value = "developer")]
        subject: String,
        /// The organisation.
        #[arg(long, default_value = "default")]
        organization: String,
        /// Scopes, comma-separated: read, write, admin.
        #[arg(long, value_delimiter = ',', default_value = "read,write")]
        scopes: Vec<String>,
        /// Restrict the token to one session.
        #[arg(long)]
        session: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86400)]
        ttl_secs: u64,
    },
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    init_logging();
    let server = Server::start(&args)
        .await
        .map_err(|error| error.to_string())?;
    println!("proliferate-server listening on http://{}", server.address);
    println!(
        "mint a token with: proliferate-server token --data-dir {}",
        args.data_dir().display()
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|error| error.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}

fn token(
    data_dir: Option<PathBuf>,
    subject: String,
    organization: String,
    scopes: Vec<String>,
    session: Option<String>,
    ttl_secs: u64,
) -> Result<(), String> {
    let args = ServeArgs::parse_defaults(data_dir);
    let scopes = scopes
        .iter()
        .map(|scope| serde_json::from_value::<Scope>(serde_json::Value::String(scope.clone())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "scopes are read, write and admin".to_owned())?;
    let authenticator = args.authenticator().map_err(|error| error.to_string())?;
    let mut claims = claims(
        &subject,
        &organization,
        &scopes,
        Duration::from_secs(ttl_secs),
    );
    claims.sid = session;
    println!("{}", authenticator.mint(&claims));
    Ok(())
}

fn main() -> ExitCode {
    let mut arguments = std::env::args_os().skip(1);
    if arguments
        .next()
        .is_some_and(|word| word == proliferate_core::sandbox::helper::SUBCOMMAND)
    {
        // This binary is also the first program inside every sandbox it starts.
        return proliferate_core::sandbox::helper::main(arguments.collect());
    }
    let result = match Cli::parse().command {
        Command::Serve(args) => tokio::runtime::Runtime::new()
            .map_err(|error| error.to_string())
            .and_then(|runtime| runtime.block_on(serve(*args))),
        Command::Token {
            data_dir,
            subject,
            organization,
            scopes,
            session,
            ttl_secs,
        } => token(data_dir, subject, organization, scopes, session, ttl_secs),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("proliferate-server: {error}");
            ExitCode::FAILURE
        }
    }
}
