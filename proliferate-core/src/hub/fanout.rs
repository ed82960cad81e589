//! Fan-out: every connection gets the same serialized frames through its own bounded queue.
//!
//! Publishing never waits: a connection whose queue is full is cut off (its overflow signal
//! fires and it closes with 1013), so one slow client never delays the agent or anyone else.
//!
//! Joins and leaves gather for a short window and go out together in one `presence_changed`,
//! so a crowd joining costs each connection a few frames rather than one per join.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::queue::{self, Refused};
use crate::protocol::v1::{Presence, PresenceChange, PresenceEntry, ServerFrame};

/// A serialized server frame; `seq` is 0 for control frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The event's seq, or 0 for a control frame.
    pub seq: u64,
    /// The frame's JSON, serialized once and shared.
    pub bytes: Bytes,
    /// When the hub staged the event, for the latency metrics; `None` for a control frame.
    pub staged: Option<Instant>,
}

impl Frame {
    /// Serializes a control frame.
    pub fn control(frame: &ServerFrame) -> Self {
        Self {
            seq: 0,
            bytes: Bytes::from(serde_json::to_vec(frame).unwrap_or_default()),
            staged: None,
        }
    }
}

/// What a connection receives from the hub.
pub(crate) struct Outlet {
    pub frames: queue::Receiver,
    pub overflow: oneshot::Receiver<()>,
    /// How many connections the session has now.
    pub connections: Arc<AtomicUsize>,
}

struct Connection {
    frames: queue::Sender,
    overflow: Option<oneshot::Sender<()>>,
    presence: PresenceEntry,
    /// How many connections had joined before this one, itself included.
    join_number: u64,
}

/// The connections another gateway holds on the session, as it last reported them.
struct RemoteGateway {
    /// Each connection, with its join number.
    connections: HashMap<String, (PresenceEntry, u64)>,
    /// When the gateway last reported.
    seen: Instant,
}

/// The connections of one session: this gateway's, which it sends frames, and other
/// gateways', which it counts and lists.
pub(crate) struct FanOut {
    budget: usize,
    connections: HashMap<String, Connection>,
    /// Other gateways' connections, by gateway.
    remote: HashMap<String, RemoteGateway>,
    /// Connections have joined so far.
    joins: u64,
    /// Connections that joined since the last `presence_changed`, by id.
    joined: HashSet<String>,
    /// Connections that left since the last `presence_changed`.
    left: Vec<String>,
    /// How long changes gather before they are announced.
    window: Duration,
    /// When the changes gathered so far are due to be announced.
    due: Option<Instant>,
    /// How many connections there are, shared with each connection's outlet.
    count: Arc<AtomicUsize>,
    /// The most connections listed in a welcome or a change.
    list_limit: usize,
    /// Whether the last announcement listed its changes (false once the count passed the limit).
    listed: bool,
}

impl FanOut {
    pub fn new(budget: usize, window: Duration, list_limit: usize) -> Self {
        Self {
            budget,
            connections: HashMap::new(),
            remote: HashMap::new(),
            joins: 0,
            joined: HashSet::new(),
            left: Vec::new(),
            window,
            due: None,
            count: Arc::default(),
            list_limit,
            listed: true,
        }
    }

    /// True when no gateway holds a connection.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections on every gateway.
    pub fn len(&self) -> usize {
        let remote: usize = (self.remote.values())
            .map(|gateway| gateway.connections.len())
            .sum();
        self.connections.len() + remote
    }

    /// Connections on this gateway.
    pub fn local_len(&self) -> usize {
        self.connections.len()
    }

    /// Takes another gateway's report of its connections: those new join, those missing leave.
    pub fn set_remote(&mut self, gateway_id: &str, connections: Vec<PresenceEntry>, now: Instant) {
        let mut known = match self.remote.remove(gateway_id) {
            Some(gateway) => gateway.connections,
            None => HashMap::new(),
        };
        let mut kept = HashMap::with_capacity(connections.len());
        for presence in connections {
            let id = presence.connection_id.clone();
            let entry = match known.remove(&id) {
                Some(entry) => entry,
                None => {
                    self.joins += 1;
                    self.joined.insert(id.clone());
                    self.changed();
                    (presence, self.joins)
                }
            };
            kept.insert(id, entry);
        }
        for (id, (_, join_number)) in known {
            self.leave(id, join_number);
        }
        if !kept.is_empty() {
            let gateway = RemoteGateway {
                connections: kept,
                seen: now,
            };
            self.remote.insert(gateway_id.to_owned(), gateway);
        }
    }

    /// Drops the connections of gateways that have not reported since `before`.
    pub fn expire_remote(&mut self, before: Instant) {
        let silent: Vec<String> = (self.remote.iter())
            .filter(|(_, gateway)| gateway.seen < before)
            .map(|(gateway_id, _)| gateway_id.clone())
            .collect();
        for gateway_id in silent {
            self.set_remote(&gateway_id, Vec::new(), before);
        }
    }

    /// A connection's presence, on this gateway or another.
    fn presence(&self, connection_id: &str) -> Option<&PresenceEntry> {
        match self.connections.get(connection_id) {
            Some(connection) => Some(&connection.presence),
            None => (self.remote.values())
                .find_map(|gateway| gateway.connections.get(connection_id))
                .map(|(presence, _)| presence),
        }
    }

    /// Adds a connection; frames published from now on reach it. Its join is announced with
    /// the next `presence_changed`.
    pub fn add(&mut self, presence: PresenceEntry) -> Outlet {
        let (frames, receiver) = queue::queue(self.budget);
        let (overflow, overflow_receiver) = oneshot::channel();
        self.joins += 1;
        self.joined.insert(presence.connection_id.clone());
        self.connections.insert(
            presence.connection_id.clone(),
            Connection {
                frames,
                overflow: Some(overflow),
                presence,
                join_number: self.joins,
            },
        );
        self.changed();
        Outlet {
            frames: receiver,
            overflow: overflow_receiver,
            connections: self.count.clone(),
        }
    }

    /// Removes a connection; true if it was there. Its leave is announced with the next
    /// `presence_changed`.
    pub fn remove(&mut self, connection_id: &str) -> bool {
        match self.connections.remove(connection_id) {
            Some(connection) => {
                self.leave(connection_id.to_owned(), connection.join_number);
                true
            }
            None => false,
        }
    }

    /// Records a leave. A join not yet announced cancels out, unless someone joined after it:
    /// their welcome listed the connection, so they must hear it left.
    fn leave(&mut self, connection_id: String, join_number: u64) {
        let unannounced = self.joined.remove(&connection_id);
        if !unannounced || join_number < self.joins {
            self.left.push(connection_id);
        }
        self.changed();
    }

    fn changed(&mut self) {
        self.count.store(self.connections.len(), Relaxed);
        if self.due.is_none() {
            self.due = Some(Instant::now() + self.window);
        }
    }

    /// Sends a frame to every connection. Returns how many were cut off for overflowing.
    pub fn publish(&mut self, frame: &Frame) -> usize {
        let mut slow = 0;
        let mut gone = Vec::new();
        self.connections.retain(|connection_id, connection| {
            let kept = match connection.frames.try_send(frame.clone()) {
                Ok(()) => true,
                Err(Refused::Full) => {
                    if let Some(signal) = connection.overflow.take() {
                        let _ = signal.send(());
                    }
                    slow += 1;
                    false
                }
                Err(Refused::Closed) => false,
            };
            if !kept {
                gone.push((connection_id.clone(), connection.join_number));
            }
            kept
        });
        for (connection_id, join_number) in gone {
            self.leave(connection_id, join_number);
        }
        slow
    }

    /// Everyone connected, in the order of their ids.
    pub fn connections(&self) -> Vec<PresenceEntry> {
        let remote = (self.remote.values())
            .flat_map(|gateway| gateway.connections.values())
            .map(|(presence, _)| presence.clone());
        let mut connections: Vec<PresenceEntry> = (self.connections.values())
            .map(|connection| connection.presence.clone())
            .chain(remote)
            .collect();
        connections.sort_by(|left, right| left.connection_id.cmp(&right.connection_id));
        connections
    }

    /// Everyone connected, if they are few enough to list in a welcome; else nobody.
    pub fn listed_connections(&self) -> Vec<PresenceEntry> {
        match self.len() <= self.list_limit {
            true => self.connections(),
            false => Vec::new(),
        }
    }

    /// When the joins and leaves gathered so far are due to be announced, if there are any.
    pub fn presence_due(&self) -> Option<Instant> {
        self.due
    }

    /// The `presence_changed` frame announcing what changed since the last one, if anything
    /// did; what it announces is forgotten.
    pub fn take_presence_change(&mut self) -> Option<Frame> {
        self.due = None;
        let joined = std::mem::take(&mut self.joined);
        let left = std::mem::take(&mut self.left);
        if self.is_empty() || (joined.is_empty() && left.is_empty()) {
            return None;
        }
        let count = self.len();
        if count > self.list_limit {
            self.listed = false;
            return Some(Frame::control(&ServerFrame::PresenceChanged(
                PresenceChange {
                    count: count as u64,
                    ..Default::default()
                },
            )));
        }
        if !self.listed {
            // Back within the limit: everyone gets the whole list again.
            self.listed = true;
            return Some(Frame::control(&ServerFrame::Presence(Presence {
                connections: self.connections(),
                ..Default::default()
            })));
        }
        let mut joined: Vec<PresenceEntry> = (joined.iter())
            .filter_map(|connection_id| self.presence(connection_id))
            .cloned()
            .collect();
        joined.sort_by(|left, right| left.connection_id.cmp(&right.connection_id));
        Some(Frame::control(&ServerFrame::PresenceChanged(
            PresenceChange {
                joined,
                left,
                count: count as u64,
                ..Default::default()
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(connection_id: &str) -> PresenceEntry {
        PresenceEntry {
            connection_id: connection_id.into(),
            subject: "ada".into(),
            source: "test".into(),
        }
    }

    /// The ids joined and left of the pending `presence_changed`, if any.
    fn change(fanout: &mut FanOut) -> Option<(Vec<String>, Vec<String>)> {
        let frame = fanout.take_presence_change()?;
        match serde_json::from_slice(&frame.bytes).unwrap() {
            ServerFrame::PresenceChanged(change) => Some((
                change.joined.into_iter().map(|e| e.connection_id).collect(),
                change.left,
            )),
            other => panic!("not a presence change: {other:?}"),
        }
    }

    #[test]
    fn joins_and_leaves_of_a_window_are_announced_together() {
        let mut fanout = FanOut::new(16, Duration::from_millis(100), 100);
        assert_eq!(fanout.presence_due(), None);
        let _a = fanout.add(entry("a"));
        let due = fanout
            .presence_due()
            .expect("a join is due to be announced");
        let _b = fanout.add(entry("b"));
        assert_eq!(fanout.presence_due(), Some(due), "the window does not move");
        assert_eq!(
            change(&mut fanout),
            Some((vec!["a".into(), "b".into()], vec![]))
        );
        assert_eq!(fanout.presence_due(), None);
        assert_eq!(change(&mut fanout), None, "nothing changed since");

        fanout.remove("a");
        let _c = fanout.add(entry("c"));
        assert_eq!(
            change(&mut fanout),
            Some((vec!["c".into()], vec!["a".into()]))
        );
        let ids: Vec<String> = (fanout.connections().into_iter())
            .map(|e| e.connection_id)
            .collect();
        assert_eq!(ids, ["b", "c"]);
    }

    #[test]
    fn a_connection_that_joined_and_left_unseen_is_announced_to_no_one() {
        let mut fanout = FanOut::new(16, Duration::from_millis(100), 100);
        let _a = fanout.add(entry("a"));
        change(&mut fanout);
        let _b = fanout.add(entry("b"));
        fanout.remove("b");
        assert_eq!(change(&mut fanout), None);
        // A connection cut for a closed queue leaves the same way.
        let c = fanout.add(entry("c"));
        drop(c);
        fanout.publish(&Frame::control(&ServerFrame::Heartbeat(Default::default())));
        assert_eq!(change(&mut fanout), None);
    }

    #[test]
    fn a_leave_is_announced_when_a_later_joiner_was_welcomed_with_it() {
        let mut fanout = FanOut::new(16, Duration::from_millis(100), 100);
        let _a = fanout.add(entry("a"));
        // b's welcome lists a, so b must hear that a left, though a's join was never announced.
        let _b = fanout.add(entry("b"));
        fanout.remove("a");
        assert_eq!(
            change(&mut fanout),
            Some((vec!["b".into()], vec!["a".into()]))
        );
    }

    #[test]
    fn a_crowd_past_the_list_limit_is_counted_and_listed_again_once_back_within() {
        let mut fanout = FanOut::new(16, Duration::from_millis(100), 2);
        let _outlets = ["a", "b"].map(|id| fanout.add(entry(id)));
        assert_eq!(fanout.listed_connections().len(), 2);
        change(&mut fanout);
        let _c = fanout.add(entry("c"));
        assert!(
            fanout.listed_connections().is_empty(),
            "three are not listed"
        );
        let frame = fanout
            .take_presence_change()
            .expect("the join is announced");
        match serde_json::from_slice(&frame.bytes).unwrap() {
            ServerFrame::PresenceChanged(change) => {
                assert_eq!(
                    (change.count, change.joined, change.left),
                    (3, vec![], vec![])
                );
            }
            other => panic!("a count alone, not {other:?}"),
        }
        fanout.remove("a");
        let frame = fanout
            .take_presence_change()
            .expect("the leave is announced");
        match serde_json::from_slice(&frame.bytes).unwrap() {
            ServerFrame::Presence(presence) => {
                let ids: Vec<String> = (presence.connections.into_iter())
                    .map(|e| e.connection_id)
                    .collect();
                assert_eq!(
                    ids,
                    ["b", "c"],
                    "the whole list, once back within the limit"
                );
            }
            other => panic!("the whole list, not {other:?}"),
        }
        fanout.remove("b");
        assert_eq!(change(&mut fanout), Some((vec![], vec!["b".into()])));
    }

    #[test]
    fn other_gateways_connections_count_and_are_announced_and_forgotten_when_silent() {
        let mut fanout = FanOut::new(16, Duration::from_millis(100), 100);
        let _a = fanout.add(entry("a"));
        let start = Instant::now();
        fanout.set_remote("g2", vec![entry("r1"), entry("r2")], start);
        assert_eq!((fanout.len(), fanout.local_len()), (3, 1));
        assert_eq!(
            change(&mut fanout),
            Some((vec!["a".into(), "r1".into(), "r2".into()], vec![]))
        );

        // A report is the whole list: who is missing left, who is new joined.
        fanout.set_remote("g2", vec![entry("r2"), entry("r3")], start);
        assert_eq!(
            change(&mut fanout),
            Some((vec!["r3".into()], vec!["r1".into()]))
        );
        fanout.set_remote("g2", vec![entry("r2"), entry("r3")], start);
        assert_eq!(change(&mut fanout), None, "the same report changes nothing");

        // A gateway silent since before the cut-off has its connections dropped.
        fanout.set_remote("g3", vec![entry("s1")], start + Duration::from_secs(10));
        fanout.expire_remote(start + Duration::from_secs(5));
        let ids: Vec<String> = (fanout.connections().into_iter())
            .map(|e| e.connection_id)
            .collect();
        assert_eq!(ids, ["a", "s1"]);
        let (_, left) = change(&mut fanout).unwrap();
        assert_eq!(left.len(), 2, "r2 and r3 left");
        fanout.remove("a");
        assert!(!fanout.is_empty(), "another gateway's client keeps it");
    }
}
