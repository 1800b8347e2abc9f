# Build stage: the same Debian release the runtime uses, so the binary's glibc matches.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin integration-exporter

# Runtime: small, no shell tools beyond what Debian slim has, non-root.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/integration-exporter --create-home exporter
COPY --from=build /src/target/release/integration-exporter /usr/local/bin/integration-exporter
USER 10001
EXPOSE 9187
ENTRYPOINT ["/usr/local/bin/integration-exporter"]
CMD ["serve", "--config", "/etc/integration-exporter/spec.yaml"]
