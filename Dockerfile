# Every didban image, one target each: the services `loan-resource` (port 8001), `payment`
# (8002) and `reservation` (8003), the `shipper`, and `es-test-server` (test support).
# Build from the workspace root: docker build --target <image> -t didban-<image> .
# (docker compose does this: every `build:` section of the compose files names its target.)

# ---- Build stages: shared by every target ------------------------------------------------
# The build context is the workspace root. Every target starts from the same `builder`, so
# the workspace is compiled once for all images: dependencies in the cargo-chef layer
# (rebuilt only when a Cargo.toml or Cargo.lock changes), and every workspace binary in one
# `cargo build` (rebuilt when the code changes). Works with the classic builder and BuildKit.
FROM rust:1-bookworm AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked \
    && rm -rf "$CARGO_HOME/registry" "$CARGO_HOME/git"
WORKDIR /workspace

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /workspace/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
# Release profile of the workspace (line tables kept for stack traces), as in the tests.
RUN cargo build --release --locked --workspace --bins \
    && mkdir -p /out \
    && cp target/release/loan-resource target/release/payment target/release/reservation \
          target/release/shipper target/release/es-test-server /out/

# ---- Runtime stages: Debian slim, no compiler, no package added --------------------------
# Each target copies its own binary from `builder` and nothing else.

# What the services and the shipper have in common. The same ids in both: the services
# (uid 10001, group didban) own their log volumes; Docker initialises an empty named
# volume with the owner and mode of the mount point, so /var/log/didban is created here
# (setgid: files inherit the didban group, which the shipper belongs to). Whichever container
# mounts the empty volume first decides its owner, hence the same directory in both.
FROM debian:bookworm-slim AS didban-runtime
RUN groupadd --system --gid 10001 didban \
    && useradd --system --uid 10001 --gid didban --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin didban \
    && install -d -o didban -g didban -m 2755 /var/log/didban

# The three services: each writes its logs to its own volume as didban.
FROM didban-runtime AS service-runtime
ENV LOG_DIR=/var/log/didban \
    LOG_TIMEZONE=Asia/Tehran
USER 10001:10001

# Health checks of the services: probe written in bash (/dev/tcp) so the image needs no
# curl: one HTTP/1.0 request to /health on $PORT, healthy only on status 200.

FROM service-runtime AS loan-resource
COPY --from=builder /out/loan-resource /usr/local/bin/loan-resource
ENV PORT=8001
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8001} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/loan-resource"]

FROM service-runtime AS payment
COPY --from=builder /out/payment /usr/local/bin/payment
ENV PORT=8002
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8002} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/payment"]

FROM service-runtime AS reservation
COPY --from=builder /out/reservation /usr/local/bin/reservation
ENV PORT=8003
EXPOSE 8003
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8003} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/reservation"]

# The shipper: tails the services' log files from their volumes into Elasticsearch. Each
# service's volume is mounted read-only at /var/log/didban/<service>; the mount points
# exist here with the services' owner, so a volume the shipper happens to mount first is
# still initialised writable for its service.
# TLS to Elasticsearch uses rustls with the CA given in ELASTICSEARCH_CA_CERT (or the
# bundled web roots), so the image needs no ca-certificates package. The shipper (uid 10002)
# belongs to group didban, so it can read the logs without owning them.
FROM didban-runtime AS shipper
RUN groupadd --system --gid 10002 shipper \
    && useradd --system --uid 10002 --gid shipper --groups didban --home-dir /nonexistent \
       --no-create-home --shell /usr/sbin/nologin shipper \
    && install -d -o shipper -g shipper -m 0750 /var/lib/didban-shipper \
    && install -d -o didban -g didban -m 2755 /var/log/didban/loan-resource \
    && install -d -o didban -g didban -m 2755 /var/log/didban/payment \
    && install -d -o didban -g didban -m 2755 /var/log/didban/reservation
COPY --from=builder /out/shipper /usr/local/bin/shipper
ENV SHIPPER_PATHS=/var/log/didban/*.log,/var/log/didban/*.log.* \
    SHIPPER_DATA_DIR=/var/lib/didban-shipper \
    SHIPPER_METRICS_ADDR=0.0.0.0:9600
USER 10002:10002
EXPOSE 9600
# Probe written in bash (/dev/tcp) so the image needs no curl: GET /health on the port of
# SHIPPER_METRICS_ADDR, healthy only on status 200.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["bash", "-c", "addr=${SHIPPER_METRICS_ADDR:-0.0.0.0:9600} && exec 3<>/dev/tcp/127.0.0.1/${addr##*:} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/shipper"]

# The Elasticsearch-compatible test server (test support, not product): stands in for
# Elasticsearch in `scripts/compose-smoke`. Plain HTTP only. Its own user: it never touches
# the log volume, so it is not in group didban.
FROM debian:bookworm-slim AS es-test-server
RUN groupadd --system --gid 10003 estest \
    && useradd --system --uid 10003 --gid estest --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin estest
COPY --from=builder /out/es-test-server /usr/local/bin/es-test-server
USER 10003:10003
EXPOSE 9200
# Probe written in bash (/dev/tcp): the server is up when GET / answers with an HTTP status
# line (200, or 401 when it runs with --username/--password).
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=5 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9200 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [[ $status == 200 || $status == 401 ]]"]
ENTRYPOINT ["/usr/local/bin/es-test-server"]
CMD ["--listen", "0.0.0.0:9200"]
