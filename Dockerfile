# syntax=docker/dockerfile:1
# hello-agents: a Flue for Swift server as a small runtime image.
# Build: docker build -t hello-agents .   Run: docker run -p 8080:8080 --env-file .env -e PORT=8080 hello-agents

# --- build stage: the official Swift toolchain builds a release binary with the static stdlib
FROM swift:6.3-noble AS build
WORKDIR /build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-dev \
    && rm -rf /var/lib/apt/lists/*
# Dependency resolution is its own layer: it reruns only when the manifest or lock file changes.
# Commit Package.resolved in applications so every image build resolves the same versions.
COPY Package.swift Package.resolved* ./
RUN swift package resolve
COPY . .
RUN swift build -c release --product hello-agents --static-swift-stdlib -Xlinker -s \
    && install -D "$(swift build -c release --show-bin-path)/hello-agents" /out/hello-agents

# --- runtime stage: the binary, CA certificates, SQLite and tini; nothing else
FROM ubuntu:24.04
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini libsqlite3-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin flue
COPY --from=build /out/hello-agents /usr/local/bin/hello-agents
USER 10001:10001
ENV PORT=8080
EXPOSE 8080
# tini is PID 1: it forwards SIGTERM to the server (which drains and exits 0) and reaps children.
ENTRYPOINT ["tini", "--", "/usr/local/bin/hello-agents"]
CMD ["serve"]
