# syntax=docker/dockerfile:1
# Build: a static binary, no cgo (modernc.org/sqlite and the embedded NATS are pure Go).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/pollcast ./cmd/pollcast

# Run: a minimal image as a non-root user, state in the /data volume.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pollcast /usr/local/bin/pollcast
VOLUME /data
ENV POLLCAST_ADDR=0.0.0.0:8080 POLLCAST_DATA=/data
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/pollcast", "serve"]
