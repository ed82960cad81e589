//! Results, and the Markdown that `docs/benchmarks.md` quotes.

use std::fmt::Write;
use std::time::Duration;

use crate::bindings::ConsumerResult;
use crate::load::{Received, Stream, Transport};
use crate::measure::Percentiles;

/// One stamped turn delivered to many clients.
#[derive(Debug)]
pub struct StreamResult {
    /// What served the clients: `gateway` or `OpenCode`.
    pub server: &'static str,
    /// How the clients connected.
    pub transport: Transport,
    /// The turn and its clients.
    pub stream: Stream,
    /// What the clients received.
    pub received: Received,
    /// CPU time the serving process used from the prompt to the last client's end.
    pub cpu: Duration,
    /// The HTTP API's latency meanwhile (the gateway only).
    pub api: Option<Latencies>,
    /// The gateway's own latency histograms over the run (the gateway only).
    pub stages: Option<Stages>,
}

/// The gateway's event latency histograms (`proliferate_event_latency_seconds`): cumulative
/// counts per bucket bound, in seconds, for the `persisted` and `sent` stages.
#[derive(Debug, Clone, Default)]
pub struct Stages {
    persisted: Vec<(f64, u64)>,
    sent: Vec<(f64, u64)>,
}

impl Stages {
    /// Reads the histograms from `/metrics` text.
    pub fn parse(metrics: &str) -> Self {
        let mut stages = Self::default();
        for line in metrics.lines() {
            let Some(rest) = line.strip_prefix("proliferate_event_latency_seconds_bucket{stage=\"")
            else {
                continue;
            };
            let Some((stage, rest)) = rest.split_once("\",le=\"") else {
                continue;
            };
            let Some((bound, count)) = rest.split_once("\"} ") else {
                continue;
            };
            let bound = bound.parse().unwrap_or(f64::INFINITY);
            let Ok(count) = count.trim().parse() else {
                continue;
            };
            match stage {
                "persisted" => stages.persisted.push((bound, count)),
                "sent" => stages.sent.push((bound, count)),
                _ => {}
            }
        }
        stages
    }

    /// What was observed since `before`.
    pub fn since(&self, before: &Stages) -> Self {
        let minus = |now: &[(f64, u64)], then: &[(f64, u64)]| {
            now.iter()
                .map(|&(bound, count)| {
                    let earlier = then
                        .iter()
                        .find(|(b, _)| *b == bound)
                        .map_or(0, |(_, c)| *c);
                    (bound, count.saturating_sub(earlier))
                })
                .collect()
        };
        Self {
            persisted: minus(&self.persisted, &before.persisted),
            sent: minus(&self.sent, &before.sent),
        }
    }

    /// The bucket bound that holds 99% of a stage's observations, as text.
    fn p99(buckets: &[(f64, u64)]) -> String {
        let total = buckets.last().map_or(0, |(_, count)| *count);
        if total == 0 {
            return "–".into();
        }
        let bound = buckets
            .iter()
            .find(|(_, count)| *count as f64 >= total as f64 * 0.99)
            .map_or(f64::INFINITY, |(bound, _)| *bound);
        match bound.is_finite() {
            true => format!("≤ {}", bound * 1000.0),
            false => "> 2500".into(),
        }
    }
}

impl StreamResult {
    fn expected(&self) -> usize {
        self.stream.clients * self.stream.deltas
    }

    fn delivered(&self) -> usize {
        self.received.latencies.len()
    }

    fn events_per_second(&self) -> f64 {
        match (self.received.first, self.received.last) {
            (Some(first), Some(last)) if last > first => {
                self.delivered() as f64 / (last - first).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    fn latency(&mut self) -> Percentiles {
        Percentiles::of(&mut self.received.latencies)
    }
}

/// Latencies of the HTTP API, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latencies {
    /// `GET /healthz`.
    pub healthz: Percentiles,
    /// `POST /v1/sessions/{id}/messages`.
    pub prompt: Percentiles,
}

/// Memory held by idle connections.
#[derive(Debug)]
pub struct IdleResult {
    /// What served them.
    pub server: &'static str,
    /// How they connected.
    pub transport: Transport,
    /// Connections held when memory was read.
    pub connections: usize,
    /// Resident memory they added to the serving process.
    pub bytes: u64,
}

/// A client reconnecting behind.
#[derive(Debug)]
pub struct CatchUp {
    /// Events it was behind.
    pub behind: usize,
    /// Each run's time from connecting to `replay_done`.
    pub times: Vec<Duration>,
}

/// How long a client waited when the gateway running its session was killed.
#[derive(Debug)]
pub struct Failover {
    /// Each run's time from the kill to the client's first new event.
    pub times: Vec<Duration>,
}

/// Everything one run measured.
pub struct Report {
    machine: String,
    streams: Vec<StreamResult>,
    idle: Vec<IdleResult>,
    catch_up: Option<CatchUp>,
    failover: Option<Failover>,
    consumers: Vec<ConsumerResult>,
}

/// The median and the largest of `times`.
fn median_and_max(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    (median, times.last().copied().unwrap_or_default())
}

fn ms(micros: u32) -> String {
    format!("{:.1}", f64::from(micros) / 1000.0)
}

impl Report {
    /// An empty report for `machine`.
    pub fn new(machine: String) -> Self {
        Self {
            machine,
            streams: Vec::new(),
            idle: Vec::new(),
            catch_up: None,
            failover: None,
            consumers: Vec::new(),
        }
    }

    /// Sets the failover result.
    pub fn failover(&mut self, result: Failover) {
        self.failover = Some(result);
    }

    /// Adds a stream's result.
    pub fn stream(&mut self, result: StreamResult) {
        eprintln!(
            "{} {} {} clients × {} deltas: {} delivered",
            result.server,
            result.transport.name(),
            result.stream.clients,
            result.stream.deltas,
            result.delivered()
        );
        self.streams.push(result);
    }

    /// Adds an idle-memory result.
    pub fn idle(&mut self, result: IdleResult) {
        self.idle.push(result);
    }

    /// Sets the catch-up result.
    pub fn catch_up(&mut self, result: CatchUp) {
        self.catch_up = Some(result);
    }

    /// Adds the consumers' results.
    pub fn consumers(&mut self, results: Vec<ConsumerResult>) {
        self.consumers.extend(results);
    }

    /// Events the gateway failed to deliver (the baseline's are reported, not counted).
    pub fn missed(&self) -> usize {
        self.streams
            .iter()
            .filter(|result| result.server != "OpenCode")
            .map(|result| result.expected().saturating_sub(result.delivered()))
            .sum()
    }

    /// The report as Markdown.
    pub fn markdown(mut self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Machine: {}.\n", self.machine);
        if !self.streams.is_empty() {
            self.streams_markdown(&mut out);
        }
        if !self.idle.is_empty() {
            self.idle_markdown(&mut out);
        }
        if let Some(failover) = &mut self.failover {
            let runs = failover.times.len();
            let (median, slowest) = median_and_max(&mut failover.times);
            let _ = writeln!(
                out,
                "\nFailover: with the running gateway killed, a client of the other gets its first new event {:.1} s after the kill (median of {runs}), {:.1} s at the slowest.",
                median.as_secs_f64(),
                slowest.as_secs_f64()
            );
        }
        if let Some(catch_up) = &mut self.catch_up {
            let (median, slowest) = median_and_max(&mut catch_up.times);
            let _ = writeln!(
                out,
                "\nCatch-up: a WebSocket client {} events behind reaches `replay_done` in {:.1} ms (median of {}), {:.1} ms at the slowest.",
                catch_up.behind,
                median.as_secs_f64() * 1000.0,
                catch_up.times.len(),
                slowest.as_secs_f64() * 1000.0
            );
        }
        if !self.consumers.is_empty() {
            self.consumers_markdown(&mut out);
        }
        out
    }

    fn streams_markdown(&mut self, out: &mut String) {
        let _ = writeln!(
            out,
            "| turn | clients | served by | transport | delivered | missed | events/s | p50 ms | p99 ms | max ms | CPU µs/event | `/healthz` p99 ms | prompt p99 ms |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let mut baseline_p99 = std::collections::HashMap::new();
        let mut running_p99 = std::collections::HashMap::new();
        let mut headlines = Vec::new();
        for result in &mut self.streams {
            let latency = result.latency();
            let turn = if result.stream.interval.is_zero() {
                format!("burst of {}", result.stream.deltas)
            } else {
                format!(
                    "{} at {}/s",
                    result.stream.deltas,
                    1_000_000 / result.stream.interval.as_micros().max(1)
                )
            };
            let delivered = result.delivered();
            let cpu = match result.cpu.is_zero() {
                true => "–".to_owned(),
                false => format!(
                    "{:.2}",
                    result.cpu.as_micros() as f64 / delivered.max(1) as f64
                ),
            };
            let (healthz, prompt) = result.api.map_or(("–".into(), "–".into()), |api| {
                (ms(api.healthz.p99), ms(api.prompt.p99))
            });
            let _ = writeln!(
                out,
                "| {turn} | {} | {} | {} | {delivered} | {} | {:.0} | {} | {} | {} | {cpu} | {healthz} | {prompt} |",
                result.stream.clients,
                result.server,
                result.transport.name(),
                result.expected().saturating_sub(delivered),
                result.events_per_second(),
                ms(latency.p50),
                ms(latency.p99),
                ms(latency.max),
            );
            let key = (
                result.stream.clients,
                result.stream.interval,
                result.stream.deltas,
            );
            if result.server == "running gateway" {
                running_p99.insert(key, (latency.p99, result.events_per_second()));
            } else if let Some((p99, rate)) = (result.server == "following gateway")
                .then(|| running_p99.get(&key))
                .flatten()
            {
                headlines.push(format!(
                    "- {turn}, {} clients of the gateway following the session: p99 {} ms, the running gateway's {} ms (following / running {:.2}); {:.0} events/s, the running gateway's {:.0} ({:.2})",
                    result.stream.clients,
                    ms(latency.p99),
                    ms(*p99),
                    f64::from(latency.p99) / f64::from((*p99).max(1)),
                    result.events_per_second(),
                    rate,
                    result.events_per_second() / rate.max(1.0),
                ));
            } else if result.server == "OpenCode" {
                baseline_p99.insert(key, (latency.p99, result.events_per_second()));
            } else if let Some((p99, rate)) = baseline_p99.get(&key) {
                headlines.push(format!(
                    "- {turn}, {} clients, gateway {}: p99 {} ms, OpenCode's {} ms (gateway / OpenCode {:.2}); {:.0} events/s, OpenCode's {:.0} ({:.2})",
                    result.stream.clients,
                    result.transport.name(),
                    ms(latency.p99),
                    ms(*p99),
                    f64::from(latency.p99) / f64::from((*p99).max(1)),
                    result.events_per_second(),
                    rate,
                    result.events_per_second() / rate.max(1.0),
                ));
            }
        }
        let _ = writeln!(
            out,
            "\nInside the gateway (`/metrics`, per run): from the hub staging an event to the store holding it, and to a client's socket.\n\n| turn | clients | transport | persisted p99 ms | sent p99 ms |\n|---|---|---|---|---|"
        );
        for result in &self.streams {
            if let Some(stages) = &result.stages {
                let _ = writeln!(
                    out,
                    "| {} × {} | {} | {} | {} | {} |",
                    result.stream.deltas,
                    if result.stream.interval.is_zero() {
                        "burst"
                    } else {
                        "paced"
                    },
                    result.stream.clients,
                    result.transport.name(),
                    Stages::p99(&stages.persisted),
                    Stages::p99(&stages.sent),
                );
            }
        }
        let _ = writeln!(
            out,
            "\nAgainst the baseline, in the same run (latency ratios below 1 and rate ratios above 1 favour the gateway):\n"
        );
        for headline in headlines {
            let _ = writeln!(out, "{headline}");
        }
    }

    fn idle_markdown(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n| served by | transport | idle connections held | memory per connection |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for idle in &self.idle {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} KB |",
                idle.server,
                idle.transport.name(),
                idle.connections,
                idle.bytes as f64 / idle.connections.max(1) as f64 / 1000.0
            );
        }
    }

    fn consumers_markdown(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\nReplaying one session from `after_seq=0` to `replay_done`, in each language (median of each client's runs; a binding/plain ratio of 1 or more means the binding is at least as fast):\n\n| language | client | events | runs | median ms | events/s | binding / plain |\n|---|---|---|---|---|---|---|"
        );
        for pair in self.consumers.chunks(2) {
            let rate = |result: &ConsumerResult| {
                result.events as f64 / result.median().as_secs_f64().max(1e-9)
            };
            for result in pair {
                let ratio = match pair {
                    [binding, plain] if result.client == "binding" => {
                        format!("{:.2}", rate(binding) / rate(plain))
                    }
                    _ => "–".into(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.1} | {:.0} | {ratio} |",
                    result.language,
                    result.client,
                    result.events,
                    result.times.len(),
                    result.median().as_secs_f64() * 1000.0,
                    rate(result),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_percentiles_come_from_the_buckets_observed_in_the_run() {
        let metrics = |persisted: [u64; 3]| {
            format!(
                "proliferate_event_latency_seconds_bucket{{stage=\"persisted\",le=\"0.001\"}} {}\n\
                 proliferate_event_latency_seconds_bucket{{stage=\"persisted\",le=\"0.01\"}} {}\n\
                 proliferate_event_latency_seconds_bucket{{stage=\"persisted\",le=\"+Inf\"}} {}\n",
                persisted[0], persisted[1], persisted[2]
            )
        };
        let before = Stages::parse(&metrics([10, 10, 10]));
        let after = Stages::parse(&metrics([10, 110, 110]));
        let run = after.since(&before);
        assert_eq!(Stages::p99(&run.persisted), "≤ 10");
        assert_eq!(Stages::p99(&before.persisted), "≤ 1");
        assert_eq!(Stages::p99(&run.sent), "–");
    }
}
