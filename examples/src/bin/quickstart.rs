//! Quickstart: create a session, stream one turn to the terminal, answer permission prompts.
//!
//! ```sh
//! PROLIFERATE_URL=http://127.0.0.1:8787 PROLIFERATE_TOKEN=... cargo run -p proliferate-examples --bin quickstart -- "your prompt"
//! ```
//!
//! Text prints as it arrives, tool calls with their status, and every permission request is
//! approved once (say `PROLIFERATE_APPROVE=reject` to refuse instead).

use std::io::Write;
use std::process::ExitCode;

use proliferate_client::protocol::v1::*;
use proliferate_client::{Client, ClientError, ConnectionOptions, PromptOptions, Update};

/// Works with the offline scripted model (the marker) and reads as a task to a real model.
const DEFAULT_PROMPT: &str = "Write a greeting into hello.txt and show it. \
     [[bash:echo Hello from the sandbox > hello.txt && cat hello.txt]]";

async fn run() -> Result<(), ClientError> {
    let url = std::env::var("PROLIFERATE_URL").unwrap_or_else(|_| "http://127.0.0.1:8787".into());
    let token = std::env::var("PROLIFERATE_TOKEN").map_err(|_| {
        ClientError::Config("set PROLIFERATE_TOKEN (scripts/run prints one)".into())
    })?;
    let decision = match std::env::var("PROLIFERATE_APPROVE").as_deref() {
        Ok("reject") => PermissionDecision::Reject,
        Ok("always") => PermissionDecision::Always,
        _ => PermissionDecision::Once,
    };
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_PROMPT.into());

    let client = Client::builder(&url).token(token).source("cli").build()?;
    let session = client
        .create_session(&CreateSessionRequest {
            title: Some("quickstart".into()),
            ..Default::default()
        })
        .await?;
    println!("session {} ({})", session.id, session.status.as_str());
    let connection = client.connect(&session.id, ConnectionOptions::default());
    let admission = connection
        .send_prompt(prompt, PromptOptions::default())
        .await?;
    let mut stdout = std::io::stdout();

    while let Some(update) = connection.next().await {
        let envelope = match update? {
            Update::Event(envelope) => envelope,
            Update::Reconnecting { attempt, reason } => {
                eprintln!("\n[reconnecting, attempt {attempt}: {reason}]");
                continue;
            }
            _ => continue,
        };
        match envelope.event {
            Event::StatusChanged(changed) => println!("[session {}]", changed.status.as_str()),
            Event::TextDelta(delta) => {
                print!("{}", delta.delta);
                let _ = stdout.flush();
            }
            Event::TextCompleted(_) => println!(),
            Event::ToolStarted(tool) => println!("[tool {} running: {}]", tool.tool, tool.input),
            Event::ToolCompleted(tool) => {
                println!("[tool {} completed]\n{}", tool.tool, tool.output.trim_end());
            }
            Event::ToolFailed(tool) => println!("[tool {} failed: {}]", tool.tool, tool.error),
            Event::PermissionRequested(request) => {
                println!(
                    "[permission {} asked for {:?}: answering {decision:?}]",
                    request.permission, request.patterns
                );
                connection
                    .reply_permission(&request.permission_id, decision)
                    .await?;
            }
            Event::PermissionResolved(resolved) => {
                println!(
                    "[permission {:?}{}]",
                    resolved.decision,
                    if resolved.timed_out {
                        " by timeout"
                    } else {
                        ""
                    }
                );
            }
            Event::AgentError(error) => {
                eprintln!("[agent error ({}): {}]", error.kind, error.message)
            }
            Event::AssistantMessageCompleted(completed) => {
                if let Some(usage) = completed.usage {
                    println!("[tokens: {} in, {} out]", usage.input, usage.output);
                }
            }
            Event::TurnCompleted(turn) if turn.prompt_id == admission.prompt_id => {
                println!("[turn completed]");
                break;
            }
            Event::TurnCancelled(turn) if turn.prompt_id == admission.prompt_id => {
                println!("[turn cancelled]");
                break;
            }
            _ => {}
        }
    }
    connection.close().await;
    println!("transcript: {}/v1/sessions/{}/transcript", url, session.id);
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quickstart: {error}");
            ExitCode::FAILURE
        }
    }
}
