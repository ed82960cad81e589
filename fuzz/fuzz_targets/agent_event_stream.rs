//! The agent's event stream as the gateway reads it (the size bound, then the SSE parser), on
//! arbitrary bytes cut into arbitrary reads: it never panics, and no message it yields is larger
//! than the bound.
#![no_main]

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;
use proliferate_core::agent::opencode::stream::{ReadError, bounded};

const LIMIT: usize = 256;

fuzz_target!(|reads: Vec<Vec<u8>>| {
    let reads = reads
        .into_iter()
        .map(|read| Ok::<_, ReadError>(Bytes::from(read)));
    let stream = bounded(futures::stream::iter(reads.collect::<Vec<_>>()), LIMIT).eventsource();
    let messages = futures::executor::block_on(stream.collect::<Vec<_>>());
    for message in messages.into_iter().flatten() {
        let size = message.data.len() + message.event.len() + message.id.len();
        assert!(size <= LIMIT, "a message of {size} bytes passed");
    }
});
