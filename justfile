# Emporium's tasks. Run them through ./dev (which installs just when missing):
#   ./dev run    ./dev test    ./dev lint    ./dev bench    ./dev --list

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Start PostgreSQL, NATS (JetStream) and Redis on loopback unless already running.
services:
    bash infra/scripts/services.sh

# Run the platform in one process on http://127.0.0.1:8000: the embedded mode (SQLite
# files under ./data/, the demo shop seeded on first start) unless DATABASE_URL or
# NATS_URL names a server.
run *ARGS:
    cargo run -p emporium-gateway --bin emporium -- serve {{ARGS}}

# Run the platform distributed: PostgreSQL and NATS JetStream on loopback (started
# when missing), the gateway, relay and projectors in one process.
run-distributed *ARGS: services
    DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/emporium}" \
    NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}" \
    cargo run -p emporium-gateway --bin emporium -- serve {{ARGS}}

# Run the whole test suite against real PostgreSQL and NATS, then the black-box suite
# (tests/e2e) again on the embedded mode (SQLite files, no servers).
test *ARGS: services
    cargo test --workspace --doc --quiet
    cargo nextest run --workspace --no-fail-fast {{ARGS}}
    EMPORIUM_STORAGE__MODE=embedded cargo nextest run -p emporium-tests --no-fail-fast {{ARGS}}

# Formatting and clippy, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Run the benchmarks (figures go to BENCHMARKS.md).
bench *ARGS: services
    cargo bench --workspace {{ARGS}}

# Regenerate the event JSON Schemas and the GraphQL SDL after an intended change.
schemas:
    UPDATE_SCHEMAS=1 cargo test -p emporium-domain --test schemas
    UPDATE_SCHEMAS=1 cargo test -p emporium-gateway --lib -- committed_sdl
    UPDATE_SCHEMAS=1 cargo test -p emporium-projections --lib -- infra_consumer

# Drop databases left behind by interrupted test runs.
clean-test-dbs:
    psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'emporium_test_%'" \
      | while read -r db; do psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done
