# Switchboard in a container: the server, the shipped plugins (built from source here)
# and the demo workflows; runs as a non-root user with its data in a volume.
#
#   docker build --build-arg SWITCHBOARD_COMMIT=$(git rev-parse --short=12 HEAD) -t switchboard .
#   docker run -p 8080:8080 -v switchboard-data:/var/lib/switchboard \
#     -v $PWD/switchboard.toml:/etc/switchboard/switchboard.toml:ro switchboard
#   docker run -p 8080:8080 switchboard serve --demo --listen 0.0.0.0:8080 --data-dir /var/lib/switchboard/data
#
# Orchestrators: liveness GET /health/live, readiness GET /health/ready. SIGTERM drains.

FROM rust:1-bookworm AS build
ARG SWITCHBOARD_COMMIT=unknown
ENV SWITCHBOARD_COMMIT=${SWITCHBOARD_COMMIT}
WORKDIR /src
RUN rustup target add wasm32-wasip1
COPY . .
RUN bash plugins/build.sh \
 && cargo build --release --locked -p switchboard \
 && strip target/release/switchboard

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/switchboard --shell /usr/sbin/nologin switchboard \
 && mkdir -p /var/lib/switchboard /etc/switchboard /usr/share/switchboard \
 && chown switchboard:switchboard /var/lib/switchboard
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
COPY --from=build /src/plugins/dist /usr/share/switchboard/plugins/dist
COPY --from=build /src/workflows /usr/share/switchboard/workflows
WORKDIR /usr/share/switchboard
USER switchboard
VOLUME ["/var/lib/switchboard"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve", "--config", "/etc/switchboard/switchboard.toml", "--listen", "0.0.0.0:8080", "--data-dir", "/var/lib/switchboard/data"]
