# nudgebot in a container: a static binary on distroless, as a non-root
# user, with its database on the /data volume.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t nudgebot .
#   docker run -d --name nudgebot --restart on-failure \
#     -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN -e NUDGEBOT_SECRET_KEY \
#     -v nudgebot-data:/data nudgebot
#
# Give the reflection key as NUDGEBOT_SECRET_KEY (or as a secret file
# mounted outside /data and named by storage.key_file). Without one,
# nudgebot creates nudgebot.key beside the database, on the /data volume,
# and warns at every start: a copy of the volume would then hold both
# the sealed reflections and the key that opens them.
#
# See docs/operations.md for configuration, metrics, backups and upgrades.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so editing the code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/nudgebot ./cmd/nudgebot
# The final image has no shell to create the volume's mount point with;
# making it here, owned by the nonroot user (65532), lets a fresh named
# volume inherit an owner that can write to it.
RUN mkdir -p /out/data && chown 65532:65532 /out/data && chmod 0700 /out/data

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/nudgebot /usr/local/bin/nudgebot
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV NUDGEBOT_STORAGE_PATH=/data/nudgebot.db
VOLUME /data
# Only used when metrics.addr is set (e.g. 0.0.0.0:9090 in a container).
EXPOSE 9090
# distroless has no shell or curl: nudgebot asks itself, over the socket
# beside its database (/data/nudgebot.db.sock), whether it is connected to
# Slack and its database answers. Slack asks apps to reconnect now and
# then, hence the patience.
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=4 \
  CMD ["/usr/local/bin/nudgebot", "health"]
ENTRYPOINT ["/usr/local/bin/nudgebot", "run"]
