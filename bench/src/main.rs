//! `proliferate-bench`: how well one session's events reach many clients.
//!
//! For each client count it streams a turn of deltas stamped with the model's send time (the
//! scripted model's `[[stamps:N]]`) to N clients, through the gateway (WebSocket and SSE) and
//! straight from OpenCode's own `/event` stream as the baseline, and reports delivery, latency,
//! CPU per delivered event, memory per idle connection, the HTTP API's latency meanwhile, and how
//! fast a client catches up; and, given consumer programs in other languages, what each binding
//! costs against a plain WebSocket client of its language. `docs/benchmarks.md` holds the results
//! and the commands.

mod agent;
mod bindings;
mod gateway;
mod gateways;
mod load;
mod measure;
mod report;

use std::time::Duration;

use clap::Parser;

use crate::bindings::Consumer;
use crate::load::{Stream, Transport};
use crate::report::Report;

/// Command-line settings.
#[derive(Debug, Parser)]
#[command(about = "Fan-out benchmarks of the Proliferate gateway against OpenCode's own stream")]
struct Settings {
    /// Client counts on one session, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    clients: Vec<usize>,
    /// Deltas in each paced turn.
    #[arg(long, default_value_t = 2000)]
    deltas: usize,
    /// Paced deltas per second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Clients of the burst turn, streamed as fast as the model can (0 leaves it out).
    #[arg(long, default_value_t = 1000)]
    burst_clients: usize,
    /// Deltas of the burst turn.
    #[arg(long, default_value_t = 2000)]
    burst_deltas: usize,
    /// Idle connections held to measure memory per connection (0 leaves it out).
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// How far behind (in events) a reconnecting client starts (0 leaves it out).
    #[arg(long, default_value_t = 10_000)]
    behind: usize,
    /// Transports through the gateway, comma-separated: `ws`, `sse`.
    #[arg(long, value_delimiter = ',', default_value = "ws,sse", value_parser = parse_transport)]
    transports: Vec<Transport>,
    /// Leave out OpenCode's own stream (the baseline).
    #[arg(long)]
    no_baseline: bool,
    /// A program that replays a session in another language, through its binding and through a
    /// plain WebSocket client of that language: `LANGUAGE=COMMAND`, repeatable (the contract is
    /// in `bench/src/bindings.rs`).
    #[arg(long = "consumer")]
    consumers: Vec<Consumer>,
    /// Deltas in the session the consumers replay.
    #[arg(long, default_value_t = 10_000)]
    consumer_deltas: usize,
    /// Runs of each consumer's binding and plain client; the median is reported.
    #[arg(long, default_value_t = 5)]
    consumer_rounds: usize,
    /// Run the consumers only.
    #[arg(long)]
    consumers_only: bool,
    /// A PostgreSQL database for the two-gateway runs (a client of the gateway following a
    /// session against one of the gateway running it, and failover); left out without it.
    #[arg(long)]
    database_url: Option<String>,
    /// The Redis server the two gateways share.
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    bus_url: String,
    /// Clients of each gateway in the two-gateway runs.
    #[arg(long, default_value_t = 100)]
    gateway_clients: usize,
    /// Kills of the running gateway, each timed.
    #[arg(long, default_value_t = 5)]
    failovers: usize,
    /// A short run for CI: a few clients and events; fails on any missed event.
    #[arg(long)]
    smoke: bool,
}

impl Settings {
    /// The short run for CI, with the consumers given.
    fn smoke(self) -> Self {
        Self {
            clients: vec![1, 10],
            deltas: 100,
            rate: 200,
            burst_clients: 10,
            burst_deltas: 200,
            idle: 100,
            behind: 300,
            transports: vec![Transport::WebSocket, Transport::Sse],
            no_baseline: false,
            consumer_deltas: 300,
            consumer_rounds: 1,
            gateway_clients: 10,
            failovers: 1,
            smoke: true,
            ..self
        }
    }
}

fn parse_transport(text: &str) -> Result<Transport, String> {
    match text {
        "ws" => Ok(Transport::WebSocket),
        "sse" => Ok(Transport::Sse),
        other => Err(format!("{other:?} is not ws or sse")),
    }
}

fn main() -> Result<(), String> {
    let mut settings = Settings::parse();
    if settings.smoke {
        settings = settings.smoke();
    }
    measure::raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let report = runtime.block_on(run(&settings))?;
    let missed = report.missed();
    println!("{}", report.markdown());
    match missed {
        0 => Ok(()),
        missed => Err(format!("{missed} events were not delivered")),
    }
}

async fn run(settings: &Settings) -> Result<Report, String> {
    let mut report = Report::new(measure::machine());
    let gateway = gateway::Gateway::start().await?;
    if !settings.consumers_only {
        fan_out(settings, &gateway, &mut report).await?;
        if let Some(database_url) = &settings.database_url {
            let shared = gateways::Shared {
                database_url: database_url.clone(),
                bus_url: settings.bus_url.clone(),
            };
            let stream = Stream {
                clients: settings.gateway_clients,
                deltas: settings.deltas,
                interval: Duration::from_micros(1_000_000 / settings.rate.max(1)),
            };
            eprintln!("two gateways on one database");
            let (streams, failover) =
                gateways::measure(&shared, &stream, settings.failovers).await?;
            streams.into_iter().for_each(|result| report.stream(result));
            report.failover(failover);
        }
    }
    if !settings.consumers.is_empty() {
        let deltas = settings.consumer_deltas;
        let rounds = settings.consumer_rounds;
        report.consumers(
            gateway
                .consumers(&settings.consumers, deltas, rounds)
                .await?,
        );
    }
    Ok(report)
}

/// Streams, idle connections and catch-up, each against the baseline where it has one.
async fn fan_out(
    settings: &Settings,
    gateway: &gateway::Gateway,
    report: &mut Report,
) -> Result<(), String> {
    eprintln!("starting the baseline agent");
    let agent = agent::Agent::start().await?;
    let paced = |clients| Stream {
        clients,
        deltas: settings.deltas,
        interval: Duration::from_micros(1_000_000 / settings.rate.max(1)),
    };
    let baseline = !settings.no_baseline;
    for &clients in &settings.clients {
        let stream = paced(clients);
        if baseline {
            report.stream(agent.stream(&stream).await?);
        }
        for &transport in &settings.transports {
            report.stream(gateway.stream(&stream, transport).await?);
        }
    }
    let burst = Stream {
        clients: settings.burst_clients,
        deltas: settings.burst_deltas,
        interval: Duration::ZERO,
    };
    if burst.clients > 0 {
        if baseline {
            report.stream(agent.stream(&burst).await?);
        }
        report.stream(gateway.stream(&burst, Transport::WebSocket).await?);
    }
    if settings.idle > 0 {
        if baseline {
            report.idle(agent.idle(settings.idle).await?);
        }
        // Each on a fresh server, so memory freed by earlier runs is not counted as reused.
        for &transport in &settings.transports {
            let fresh = gateway::Gateway::start().await?;
            report.idle(fresh.idle(settings.idle, transport).await?);
        }
    }
    if settings.behind > 0 {
        report.catch_up(gateway.catch_up(settings.behind).await?);
    }
    Ok(())
}
