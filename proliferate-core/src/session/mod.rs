//! Sessions: the lifecycle state machine and the service that creates, pauses, resumes,
//! snapshots and deletes them.

pub mod status;
