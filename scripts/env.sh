# Shared settings for the project's scripts: caches live outside the repository.
export PROLIFERATE_CACHE="${PROLIFERATE_CACHE:-$HOME/.cache/proliferate}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PROLIFERATE_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export PROLIFERATE_OPENCODE_BIN="${PROLIFERATE_OPENCODE_BIN:-$PROLIFERATE_CACHE/opencode/node_modules/.bin/opencode}"
mkdir -p "$PROLIFERATE_CACHE"

step() { printf '\n==> %s\n' "$*"; }
