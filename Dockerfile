# pgsluice container image.
#
# Build:  docker build -t pgsluice .
# Run:    docker run -p 6432:6432 -v /path/to/conf:/etc/pgsluice:ro pgsluice
#
# The config is read from /etc/pgsluice/pooler.toml; its auth_file (e.g. userlist.txt) is
# resolved relative to it, so mount both in that directory. Inside a container set
# `listen_addr = "0.0.0.0"` so published ports reach the pooler. The process runs as the
# unprivileged user `pgsluice`; its unix_socket_dir must be writable by it (e.g. /tmp).
# Cargo.lock must be committed: the build uses --locked.

# ---- builder ---------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /build

# Dependencies first, against stub sources, so this layer is reused until Cargo.toml or
# Cargo.lock change. Cargo refuses a manifest whose declared [[bench]]/[[test]]/[[example]]/
# [[bin]] targets have no file, so a stub is written for each of them too.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && awk ' \
      function flush() { \
        if (kind == "") return; \
        if (path == "") { \
          dir = (kind == "bench") ? "benches" : (kind == "test") ? "tests" : \
                (kind == "example") ? "examples" : "src/bin"; \
          path = dir "/" name ".rs"; \
        } \
        print path; kind = ""; name = ""; path = ""; \
      }; \
      /^\[\[(bench|test|example|bin)\]\]/ { flush(); kind = $0; gsub(/[][ ]/, "", kind); next }; \
      /^\[/ { flush(); next }; \
      kind != "" && /^name[ \t]*=/ { name = $0; sub(/^[^"]*"/, "", name); sub(/".*/, "", name) }; \
      kind != "" && /^path[ \t]*=/ { path = $0; sub(/^[^"]*"/, "", path); sub(/".*/, "", path) }; \
      END { flush() }' Cargo.toml \
    | while read -r stub; do mkdir -p "$(dirname "$stub")"; echo 'fn main() {}' > "$stub"; done \
 && cargo build --release --locked \
 && rm -rf src

# The real sources. COPY keeps the files' own (older) mtimes, which could make cargo think the
# stub build is still fresh: drop the crate's own artifacts so it is rebuilt for sure.
COPY src ./src
RUN rm -rf target/release/.fingerprint/pgsluice-* target/release/deps/pgsluice-* \
        target/release/deps/libpgsluice-* target/release/pgsluice \
 && cargo build --release --locked \
 && install -m 0755 target/release/pgsluice /usr/local/bin/pgsluice

# ---- runtime ---------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin pgsluice \
 && mkdir -p /etc/pgsluice
COPY --from=builder /usr/local/bin/pgsluice /usr/local/bin/pgsluice

# Expected config: /etc/pgsluice/pooler.toml (plus the userlist it names).
VOLUME /etc/pgsluice
USER pgsluice
EXPOSE 6432
ENTRYPOINT ["pgsluice"]
CMD ["-c", "/etc/pgsluice/pooler.toml"]
