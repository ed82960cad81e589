//! The hub's writes: what a turn of the loop stages (events, the session's record, prompt
//! states) is written as one batch, by a task of its own, before the next turn. A write that
//! takes longer than 30 s is left in flight and the loop goes on (beating, draining the agent,
//! admitting), publishing nothing until the store answers. Events are published once written;
//! a prompt's sender is answered, and the agent sees the prompt, once its `user_message` is.

use super::*;
use crate::metrics::Stage;
use crate::store::EventLog;

/// One write: what was staged when it started, in the order it is stored.
#[derive(Default)]
pub(super) struct Batch {
    events: Vec<StoredEvent>,
    record: Option<SessionRecord>,
    prompt_states: Vec<(String, PromptState)>,
    /// Drop old events, keeping this transcript (folded through the batch) in their place.
    compact: Option<(Compaction, Transcript)>,
}

/// Which old events a write drops.
pub(super) enum Compaction {
    /// Every event through this seq.
    Through(u64),
    /// Every event written before this time (ms since the epoch), among the seqs in this
    /// range, always keeping the newest.
    Before(i64, std::ops::RangeInclusive<u64>),
}

/// How often, at most, a hub that writes looks for events past their age (as often as the age
/// itself when that is shorter).
const AGE_CHECK: Duration = Duration::from_secs(60);

/// When the event at `seq` was written, if the log holds it.
async fn written_at(
    log: &dyn EventLog,
    session_id: &str,
    seq: u64,
) -> Result<Option<i64>, GatewayError> {
    let page = log.read(session_id, seq - 1, 1).await?;
    let event = page.first().filter(|event| event.seq == seq);
    Ok(
        event.and_then(|event| match serde_json::from_slice(&event.frame) {
            Ok(ServerFrame::Event(envelope)) => Some(envelope.timestamp),
            _ => None,
        }),
    )
}

/// The newest seq in `range`, short of its end, written before `cutoff`: a binary search over
/// point reads (seqs are written in time order).
async fn last_before(
    log: &dyn EventLog,
    session_id: &str,
    cutoff: i64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, GatewayError> {
    // Seqs start at 1, so `middle - 1` never wraps.
    let (mut low, mut high) = ((*range.start()).max(1), range.end().saturating_sub(1));
    let mut found = None;
    while low <= high {
        let middle = low + (high - low) / 2;
        if written_at(log, session_id, middle)
            .await?
            .is_some_and(|at| at < cutoff)
        {
            found = Some(middle);
            low = middle + 1;
        } else {
            high = middle - 1;
        }
    }
    Ok(found)
}

/// How a write ended: what it stored, and what it did not.
pub(super) struct Written {
    /// The events now in the log, to publish.
    appended: Vec<StoredEvent>,
    /// The seq through which the log was compacted.
    compacted: Option<u64>,
    /// What is left to store, when the store failed part way.
    rest: Batch,
    result: Result<(), GatewayError>,
}

/// A write in flight: a task of its own, so it goes on (and lets go of the store's write lock)
/// while the loop awaits anything else.
pub(super) type Writing = tokio::task::JoinHandle<Written>;

/// How long a sender waits for its prompt's `user_message` to be written before it is told
/// `unavailable` (the prompt stays admitted; sending it again returns its admission).
const ADMISSION_WAIT: Duration = Duration::from_secs(30);

/// An answer held until the log holds `seq` (what it reports is then readable).
pub(super) struct Answer {
    seq: u64,
    /// Sends the answer, or the error that replaces it.
    send: Box<dyn FnOnce(Option<GatewayError>) + Send>,
    /// When the caller stops waiting.
    deadline: Instant,
}

/// Stores `batch` in order, stopping at the first failure.
async fn write(services: Arc<Services>, lease: Lease, mut batch: Batch) -> Written {
    let session_id = lease.session_id.clone();
    let mut written = Written {
        appended: Vec::new(),
        compacted: None,
        rest: Batch::default(),
        result: Ok(()),
    };
    let result = async {
        if !batch.events.is_empty() {
            services.log.append(&lease, &batch.events).await?;
            written.appended = std::mem::take(&mut batch.events);
        }
        if let Some(record) = &batch.record {
            services.store.update_session(&lease, record).await?;
            batch.record = None;
        }
        while let Some((prompt_id, state)) = batch.prompt_states.first() {
            (services.store)
                .set_prompt_state(&lease, prompt_id, *state)
                .await?;
            batch.prompt_states.remove(0);
        }
        if let Some((compaction, transcript)) = &batch.compact {
            let log = &*services.log;
            let through_seq = match compaction {
                Compaction::Through(seq) => Some(*seq),
                Compaction::Before(cutoff, range) => {
                    last_before(log, &session_id, *cutoff, range.clone()).await?
                }
            };
            if let Some(through_seq) = through_seq {
                log.compact(&lease, through_seq, transcript).await?;
                written.compacted = Some(through_seq);
            }
            batch.compact = None;
        }
        Ok::<_, GatewayError>(())
    }
    .await;
    written.result = result;
    written.rest = batch;
    written
}

/// Resolves when the write in flight ends; never while none is.
pub(super) async fn written(writing: &mut Option<Writing>) -> Written {
    match writing {
        Some(task) => task.await.unwrap_or_else(|failure| Written {
            appended: Vec::new(),
            compacted: None,
            rest: Batch::default(),
            result: Err(GatewayError::Unavailable(format!(
                "the write failed: {failure}"
            ))),
        }),
        None => std::future::pending().await,
    }
}

impl Hub {
    /// Whether anything waits to be stored or is being stored.
    pub(super) fn unflushed(&self) -> bool {
        !self.unpersisted.is_empty()
            || self.record_dirty
            || !self.prompt_states.is_empty()
            || self.writing.is_some()
    }

    /// Stores a prompt's new state with the next write, after the events staged before it.
    pub(super) fn stage_prompt_state(&mut self, prompt_id: &str, state: PromptState) {
        self.prompt_states.push((prompt_id.to_owned(), state));
    }

    /// Answers `reply` with `result` once the log holds seq `seq`.
    pub(super) fn answer_when_written<T: Send + 'static>(
        &mut self,
        seq: u64,
        reply: Reply<T>,
        result: Result<T, GatewayError>,
    ) {
        if seq <= self.written_seq {
            let _ = reply.send(result);
            return;
        }
        self.answers.push(Answer {
            seq,
            send: Box::new(move |failure| {
                let _ = reply.send(match failure {
                    Some(error) => Err(error),
                    None => result,
                });
            }),
            deadline: Instant::now() + ADMISSION_WAIT,
        });
    }

    /// Answers `reply` with `result` once everything staged so far is in the log.
    pub(super) fn answer_when_staged_written<T: Send + 'static>(
        &mut self,
        reply: Reply<T>,
        result: Result<T, GatewayError>,
    ) {
        self.answer_when_written(self.head_seq, reply, result);
    }

    /// When the first waiting sender stops waiting.
    pub(super) fn admission_deadline(&self) -> Option<Instant> {
        self.answers.iter().map(|answer| answer.deadline).min()
    }

    /// Tells senders who waited too long that the store is slow.
    pub(super) fn expire_admissions(&mut self, now: Instant) {
        let (expired, waiting) = (std::mem::take(&mut self.answers).into_iter())
            .partition::<Vec<_>, _>(|answer| answer.deadline <= now);
        self.answers = waiting;
        for answer in expired {
            (answer.send)(Some(GatewayError::Unavailable(
                "the store is slow; what was asked is done and is stored once it answers".into(),
            )));
        }
    }

    /// Starts writing what is staged, unless a write is in flight or a failed one waits for its
    /// retry.
    pub(super) fn start_write(&mut self) {
        let retry_due = self.retry_at.is_none_or(|at| at <= Instant::now());
        let staged =
            !self.unpersisted.is_empty() || self.record_dirty || !self.prompt_states.is_empty();
        // Nothing more is written for a session being deleted.
        if self.writing.is_some() || !retry_due || !staged || self.deleting.is_some() {
            return;
        }
        self.retry_at = None;
        let batch = Batch {
            events: std::mem::take(&mut self.unpersisted),
            record: std::mem::take(&mut self.record_dirty).then(|| self.record.clone()),
            prompt_states: std::mem::take(&mut self.prompt_states),
            compact: self.compaction_due(),
        };
        let (services, lease) = (self.services.clone(), self.lease.clone());
        self.writing = Some(tokio::spawn(write(services, lease, batch)));
    }

    /// Publishes what a write stored and answers the senders it was for; on failure, puts the
    /// rest back in front of what was staged since, for a retry in a second.
    pub(super) async fn on_written(&mut self, written: Written) -> Result<(), GatewayError> {
        self.writing = None;
        self.services
            .metrics
            .events_appended(written.appended.len());
        let now = Instant::now();
        let mut announced = Vec::with_capacity(written.appended.len());
        for event in written.appended {
            self.written_seq = event.seq;
            let mut staged = None;
            while let Some(&(seq, at)) = self.staged_at.front().filter(|(seq, _)| *seq <= event.seq)
            {
                self.staged_at.pop_front();
                staged = (seq == event.seq).then_some(at);
            }
            if let Some(staged) = staged {
                let metrics = &self.services.metrics;
                metrics.observe(Stage::Persisted, now.saturating_duration_since(staged));
            }
            if self.services.relay.is_some() {
                announced.push((event.seq, event.frame.clone()));
            }
            self.publish(&Frame {
                seq: event.seq,
                bytes: event.frame,
                staged,
            });
        }
        if !announced.is_empty() {
            self.announce(&SessionMessage::Events(announced));
        }
        if let Some(through_seq) = written.compacted {
            self.earliest_retained = through_seq + 1;
        }
        let written_seq = self.written_seq;
        let (answered, waiting) = (std::mem::take(&mut self.answers).into_iter())
            .partition::<Vec<_>, _>(|answer| answer.seq <= written_seq);
        self.answers = waiting;
        for answer in answered {
            (answer.send)(None);
        }
        if let Err(error) = written.result {
            if self.deleting.is_some() {
                // The session went first: what was left to write goes with it.
                tracing::debug!(session_id = %self.record.info.id, error = %error, "a write met the delete");
                return Ok(());
            }
            let rest = written.rest;
            self.unpersisted.splice(0..0, rest.events);
            self.record_dirty |= rest.record.is_some();
            self.prompt_states.splice(0..0, rest.prompt_states);
            if !error.is_transient() {
                return Err(error);
            }
            tracing::warn!(session_id = %self.record.info.id, error = %error, "the store is busy; retrying");
            self.retry_at = Some(Instant::now() + Duration::from_secs(1));
            // The prompts stay admitted and are logged on the retry; their senders hear now,
            // and a sender that sends again gets the admission.
            for answer in self.answers.drain(..) {
                (answer.send)(Some(GatewayError::Unavailable(format!(
                    "the store is busy: {error}"
                ))));
            }
        }
        // A turn waits for its prompt's message to be in the log.
        match self.lifecycle.agent() {
            Some(_) => self.advance().await,
            None => Ok(()),
        }
    }

    /// Writes what is staged now, waiting for it (and for what it starts, such as a turn's
    /// first event), unless the store refuses it, which leaves it to the retry, or takes longer
    /// than a sender waits, which leaves it in flight: the loop then goes on, and what it stages
    /// waits for that write to end.
    pub(super) async fn write_through(&mut self) -> Result<(), GatewayError> {
        loop {
            if self.writing.is_some() {
                return Ok(());
            }
            self.start_write();
            if self.writing.is_none() {
                return Ok(());
            }
            let waited = tokio::time::timeout(ADMISSION_WAIT, written(&mut self.writing)).await;
            let Ok(written) = waited else {
                return Ok(());
            };
            let failed = written.result.is_err();
            self.on_written(written).await?;
            if failed {
                return Ok(());
            }
        }
    }

    /// Waits for the write in flight, then writes what is left, once: for a hub that stops.
    pub(super) async fn write_out(&mut self) -> Result<(), GatewayError> {
        if self.writing.is_some() {
            let written = written(&mut self.writing).await;
            self.on_written(written).await?;
        }
        self.retry_at = None;
        self.start_write();
        if self.writing.is_some() {
            let written = written(&mut self.writing).await;
            let failed = written.result.as_ref().err().map(ToString::to_string);
            self.on_written(written).await?;
            if let Some(reason) = failed {
                return Err(GatewayError::Unavailable(reason));
            }
        }
        Ok(())
    }

    /// The compaction due with this write, if any: when the log holds a quarter more than
    /// `retained_events`, the older events; at most once a minute, those older than
    /// `retained_age`. The transcript (folded through the head) is kept in their place.
    fn compaction_due(&mut self) -> Option<(Compaction, Transcript)> {
        let config = &self.services.config;
        let by_count = config.retained_events.and_then(|retained| {
            let slack = (retained / 4).max(1);
            (self.head_seq >= self.earliest_retained + retained + slack)
                .then(|| Compaction::Through(self.head_seq - retained))
        });
        let now = Instant::now();
        let by_age = match (config.retained_age, self.next_age_check) {
            (Some(age), next) if next.is_none_or(|next| next <= now) => {
                self.next_age_check = Some(now + age.min(AGE_CHECK));
                let cutoff = now_millis() - age.as_millis() as i64;
                Some(Compaction::Before(
                    cutoff,
                    self.earliest_retained..=self.head_seq,
                ))
            }
            _ => None,
        };
        let compaction = by_count.or(by_age)?;
        Some((compaction, self.reducer.transcript().clone()))
    }
}
