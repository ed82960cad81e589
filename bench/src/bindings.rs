//! The bindings' cost: how fast a program in another language replays one session's backlog
//! through its Proliferate binding, against a plain WebSocket client in the same language.
//!
//! A consumer is a command, run with `sh -c` and these variables set: `PROLIFERATE_URL` (the
//! gateway's base URL), `PROLIFERATE_TOKEN`, `PROLIFERATE_SESSION` and `PROLIFERATE_CLIENT`
//! (`binding` or `plain`). It connects with `after_seq=0`, reads every event up to
//! `replay_done` and prints one JSON line, `{"events": N, "seconds": S}`, timing itself from
//! before it connects to `replay_done` (so the language's start-up is not counted).

use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

/// The longest one consumer run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// The two clients each consumer measures, in the order they alternate.
const CLIENTS: [&str; 2] = ["binding", "plain"];

/// A consumer program: `LANGUAGE=COMMAND` on the command line.
#[derive(Debug, Clone)]
pub struct Consumer {
    /// The language, as reported.
    pub language: String,
    /// The shell command that runs it.
    pub command: String,
}

impl FromStr for Consumer {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('=') {
            Some((language, command)) if !language.is_empty() && !command.trim().is_empty() => {
                Ok(Self {
                    language: language.to_owned(),
                    command: command.to_owned(),
                })
            }
            _ => Err(format!("{text:?} is not LANGUAGE=COMMAND")),
        }
    }
}

/// The session a consumer replays.
pub struct Backlog<'a> {
    /// The gateway's base URL.
    pub url: &'a str,
    /// A token that may read the session.
    pub token: &'a str,
    /// The session's id.
    pub session: &'a str,
    /// Its head seq: the events a full replay yields.
    pub events: u64,
}

/// One client of one language, over every round.
#[derive(Debug)]
pub struct ConsumerResult {
    /// The language.
    pub language: String,
    /// `binding` or `plain`.
    pub client: &'static str,
    /// Events each run replayed.
    pub events: u64,
    /// Each run's time from connecting to `replay_done`.
    pub times: Vec<Duration>,
}

impl ConsumerResult {
    /// The median run's time.
    pub fn median(&self) -> Duration {
        let mut times = self.times.clone();
        times.sort();
        times.get(times.len() / 2).copied().unwrap_or_default()
    }
}

impl Consumer {
    /// Runs the binding and the plain client `rounds` times each, alternating.
    pub async fn measure(
        &self,
        backlog: &Backlog<'_>,
        rounds: usize,
    ) -> Result<[ConsumerResult; 2], String> {
        let mut results = CLIENTS.map(|client| ConsumerResult {
            language: self.language.clone(),
            client,
            events: backlog.events,
            times: Vec::new(),
        });
        for _ in 0..rounds {
            for result in &mut results {
                result.times.push(self.run(backlog, result.client).await?);
            }
        }
        Ok(results)
    }

    async fn run(&self, backlog: &Backlog<'_>, client: &str) -> Result<Duration, String> {
        let name = format!("{} {client}", self.language);
        let run = tokio::process::Command::new("sh")
            .args(["-c", &self.command])
            .env("PROLIFERATE_URL", backlog.url)
            .env("PROLIFERATE_TOKEN", backlog.token)
            .env("PROLIFERATE_SESSION", backlog.session)
            .env("PROLIFERATE_CLIENT", client)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(RUN_TIMEOUT, run)
            .await
            .map_err(|_| format!("{name} ran over {RUN_TIMEOUT:?}"))?
            .map_err(|error| format!("{name}: {error}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!(
                "{name} failed ({}): {stdout}{stderr}",
                output.status
            ));
        }
        let answer: Value = stdout
            .lines()
            .last()
            .and_then(|line| serde_json::from_str(line).ok())
            .ok_or_else(|| format!("{name} printed no result: {stdout}"))?;
        let events = answer["events"].as_u64();
        if events != Some(backlog.events) {
            return Err(format!(
                "{name} replayed {events:?} events of {}",
                backlog.events
            ));
        }
        answer["seconds"]
            .as_f64()
            .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("{name} printed no time: {stdout}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_is_a_language_and_a_command() {
        let consumer: Consumer = "python=python3 replay.py --fast".parse().unwrap();
        assert_eq!(consumer.language, "python");
        assert_eq!(consumer.command, "python3 replay.py --fast");
        assert!("python".parse::<Consumer>().is_err());
        assert!("=python3".parse::<Consumer>().is_err());
        assert!("python= ".parse::<Consumer>().is_err());
    }
}
