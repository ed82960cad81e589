//! A connection's frame queue: bounded, fed by the hub and read by the connection's task. It
//! holds memory only for the frames waiting (a channel with fixed blocks holds kilobytes per
//! connection), so an idle connection costs a few bytes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::fanout::Frame;

/// Frames of spare room a drained queue keeps; past it, the room is given back.
const SPARE: usize = 32;

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds its most frames.
    Full,
    /// The reader is gone.
    Closed,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Frame>,
    waker: Option<Waker>,
    sender_gone: bool,
    receiver_gone: bool,
}

#[derive(Default)]
struct Shared(Mutex<State>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the queue consistent: every change is one step.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A queue holding at most `capacity` frames.
pub(crate) fn queue(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared::default());
    let sender = Sender {
        shared: shared.clone(),
        capacity,
    };
    (sender, Receiver { shared })
}

/// The hub's end.
pub(crate) struct Sender {
    shared: Arc<Shared>,
    capacity: usize,
}

impl Sender {
    /// Queues a frame without waiting.
    pub fn try_send(&self, frame: Frame) -> Result<(), Refused> {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Err(Refused::Closed);
        }
        if state.frames.len() >= self.capacity {
            return Err(Refused::Full);
        }
        state.frames.push_back(frame);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.sender_gone = true;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The connection's end.
pub(crate) struct Receiver {
    shared: Arc<Shared>,
}

impl Receiver {
    /// The next frame; `None` once the hub dropped its end and every frame was taken.
    /// Cancel-safe.
    pub async fn recv(&mut self) -> Option<Frame> {
        std::future::poll_fn(|context| self.poll_recv(context)).await
    }

    fn poll_recv(&mut self, context: &mut Context<'_>) -> Poll<Option<Frame>> {
        let mut state = self.shared.lock();
        if let Some(frame) = Self::pop(&mut state) {
            return Poll::Ready(Some(frame));
        }
        if state.sender_gone {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(waker) => waker.clone_from(context.waker()),
            empty => *empty = Some(context.waker().clone()),
        }
        Poll::Pending
    }

    /// The next frame if one is queued.
    pub fn try_recv(&mut self) -> Option<Frame> {
        Self::pop(&mut self.shared.lock())
    }

    fn pop(state: &mut State) -> Option<Frame> {
        let frame = state.frames.pop_front()?;
        if state.frames.is_empty() && state.frames.capacity() > SPARE {
            state.frames = VecDeque::new();
        }
        Some(frame)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        state.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> Frame {
        Frame {
            seq,
            bytes: bytes::Bytes::from(seq.to_string()),
            staged: None,
        }
    }

    #[tokio::test]
    async fn frames_arrive_in_order_up_to_the_capacity() {
        let (sender, mut receiver) = queue(2);
        assert_eq!(sender.try_send(frame(1)), Ok(()));
        assert_eq!(sender.try_send(frame(2)), Ok(()));
        assert_eq!(sender.try_send(frame(3)), Err(Refused::Full));
        assert_eq!(receiver.recv().await, Some(frame(1)));
        assert_eq!(receiver.try_recv(), Some(frame(2)));
        assert_eq!(receiver.try_recv(), None);
        assert_eq!(sender.try_send(frame(3)), Ok(()));
        drop(sender);
        assert_eq!(
            receiver.recv().await,
            Some(frame(3)),
            "queued frames outlive the sender"
        );
        assert_eq!(receiver.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_for_a_frame_and_the_sender_learns_it_left() {
        let (sender, mut receiver) = queue(8);
        let waiting = tokio::spawn(async move {
            let first = receiver.recv().await;
            (first, receiver)
        });
        tokio::task::yield_now().await;
        sender.try_send(frame(7)).unwrap();
        let (first, receiver) = waiting.await.unwrap();
        assert_eq!(first, Some(frame(7)));
        drop(receiver);
        assert_eq!(sender.try_send(frame(8)), Err(Refused::Closed));
    }

    #[tokio::test]
    async fn a_drained_queue_gives_its_room_back() {
        let (sender, mut receiver) = queue(1000);
        for seq in 0..100 {
            sender.try_send(frame(seq)).unwrap();
        }
        while receiver.try_recv().is_some() {}
        assert_eq!(receiver.shared.lock().frames.capacity(), 0);
    }
}
