# Build stage: the same Debian release the runtime uses, so the binary's glibc matches.
FROM rust:1-bookworm AS build
# `.git` is not copied in (see .dockerignore): pass what `--version` and build_info report, e.g.
# --build-arg REVISION=$(git rev-parse HEAD) --build-arg BRANCH=$(git rev-parse --abbrev-ref HEAD)
ARG REVISION=unknown
ARG BRANCH=unknown
WORKDIR /src
COPY . .
RUN INTEGRATION_EXPORTER_REVISION="$REVISION" INTEGRATION_EXPORTER_BRANCH="$BRANCH" \
    cargo build --release --locked --bin integration-exporter

# Runtime: small, no shell tools beyond what Debian slim has, non-root.
FROM debian:bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="integration-exporter" \
      org.opencontainers.image.description="Prometheus exporter, alert rules and dashboards for OAuth integrations, generated from their runbooks" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/integration-exporter --create-home exporter
COPY --from=build /src/target/release/integration-exporter /usr/local/bin/integration-exporter
COPY LICENSE /usr/share/doc/integration-exporter/LICENSE
USER 10001
# The exporter's own port (see `listen` in the spec reference); on all interfaces, so that
# `docker run -p 29187:29187` just works whatever the spec's `listen` says.
EXPOSE 29187
ENTRYPOINT ["/usr/local/bin/integration-exporter"]
CMD ["serve", "--config.file=/etc/integration-exporter/spec.yaml", "--web.listen-address=0.0.0.0:29187"]
