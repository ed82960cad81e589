//! The reference Proliferate server, as a library that exposes its router.
