//! Runnable examples of the Proliferate SDK; see the binaries in `src/bin`.
