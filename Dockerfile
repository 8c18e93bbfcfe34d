# phantun-runtime: upstream phantun built from source, run by the Deno
# supervisor under its production permission manifest. Needs BuildKit (the
# legacy builder drops the file capabilities set below; it is refused).
#
#   docker build -t phantun-runtime .
#
# Build args (see README): PHANTUN_UPSTREAM, PHANTUN_OWNER, PHANTUN_REPO,
# PHANTUN_COMMIT, PHANTUN_TARBALL_SHA256, RUNTIME_VERSION and the *_IMAGE
# base images below, each pinned and overridable.

ARG DEBIAN_IMAGE=debian:12.15-slim
ARG RUST_IMAGE=rust:1.96.0-slim-bookworm
ARG DENO_IMAGE=denoland/deno:bin-2.9.6
ARG PHANTUN_UPSTREAM=https://github.com
ARG PHANTUN_OWNER=dndx
ARG PHANTUN_REPO=phantun
ARG PHANTUN_COMMIT=
ARG PHANTUN_TARBALL_SHA256=
# Must equal "version" in deno.json: the build checks it.
ARG RUNTIME_VERSION=0.1.0

FROM ${DENO_IMAGE} AS deno

# Fetch phantun's source into /src and record what it is (fetch-phantun.sh).
FROM ${DEBIAN_IMAGE} AS fetch
ARG TARGETARCH
RUN test -n "$TARGETARCH" || { echo "BuildKit is required (DOCKER_BUILDKIT=1)" >&2; exit 1; }
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/fetch-phantun.sh /usr/local/bin/
ARG PHANTUN_UPSTREAM
ARG PHANTUN_OWNER
ARG PHANTUN_REPO
ARG PHANTUN_COMMIT
ARG PHANTUN_TARBALL_SHA256
# The upstream's refs: a new default-branch HEAD invalidates the cached fetch.
ADD ${PHANTUN_UPSTREAM}/${PHANTUN_OWNER}/${PHANTUN_REPO}/info/refs?service=git-upload-pack /tmp/phantun-refs
RUN fetch-phantun.sh

# Build. The same source, however fetched, reuses this layer from the cache.
FROM ${RUST_IMAGE} AS build
COPY --from=fetch /src /src
WORKDIR /src
RUN cargo build --release $(test -f Cargo.lock && echo --locked) \
 && install -D -m 0755 target/release/client /out/phantun_client \
 && install -D -m 0755 target/release/server /out/phantun_server

# Assemble the runtime's whole filesystem in /rootfs: tini, deno, phantun with
# cap_net_admin+ep, the libraries they link, the supervisor and the record.
# The supervisor goes in as one module, /app/main.js, that `deno bundle` makes
# of main.ts and lib/ (Deno's own bundler, esbuild, fetched from npm with the
# stage's CA store, as curl and cargo use theirs): loading
# twelve modules (main.ts, lib/, deno.json) instead of one cost ~1.5-3 ms at
# every start (DESIGN.md §8, §11).
FROM ${DEBIAN_IMAGE} AS assemble
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libcap2-bin tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=deno /deno /rootfs/usr/local/bin/deno
COPY --from=build /out/ /rootfs/usr/local/bin/
COPY --from=fetch /out/phantun-source /rootfs/usr/local/share/phantun-runtime/phantun-source
COPY deno.json deno.lock main.ts /src/
COPY lib/ /src/lib/
ARG RUNTIME_VERSION
RUN cd /rootfs \
 && version=$(usr/local/bin/deno eval 'console.log(JSON.parse(Deno.readTextFileSync("/src/deno.json")).version)') \
 && { [ "$version" = "$RUNTIME_VERSION" ] \
      || { echo "RUNTIME_VERSION=$RUNTIME_VERSION but deno.json has $version" >&2; exit 1; }; } \
 && for binary in usr/local/bin/*; do ldd "$binary" | grep -o '/[^ ]*'; done | sort -u \
    | xargs -I{} cp -L --parents {} /rootfs \
 && for binary in usr/local/bin/phantun_*; do setcap cap_net_admin+ep "$binary"; done \
 && install -D -m 0755 /usr/bin/tini-static usr/bin/tini \
 && mkdir -p run/phantun-runtime app \
 && cp /src/deno.json /src/deno.lock app/ \
 && cd /src \
 && DENO_DIR=/tmp/deno-bundle DENO_TLS_CA_STORE=system \
    /rootfs/usr/local/bin/deno bundle --quiet \
    --platform=deno --output=/rootfs/app/main.js main.ts

FROM scratch
COPY --from=assemble /rootfs/ /
ENV DENO_DIR=/deno-dir DENO_NO_UPDATE_CHECK=1
WORKDIR /app
# Run the supervisor once now, so that V8's code cache for it is in the image.
RUN ["/usr/local/bin/deno", "run", "--no-prompt", "--quiet", "--config=/app/deno.json", "-P=production", "/app/main.js", "--version"]
ARG RUNTIME_VERSION
ARG PHANTUN_UPSTREAM
ARG PHANTUN_OWNER
ARG PHANTUN_REPO
ARG PHANTUN_COMMIT
ARG PHANTUN_TARBALL_SHA256
LABEL org.opencontainers.image.title="phantun-runtime" \
      org.opencontainers.image.description="Upstream phantun (UDP over fake TCP) client and server under a Deno supervisor" \
      org.opencontainers.image.version="${RUNTIME_VERSION}" \
      phantun-runtime.phantun.repository="${PHANTUN_UPSTREAM}/${PHANTUN_OWNER}/${PHANTUN_REPO}" \
      phantun-runtime.phantun.commit="${PHANTUN_COMMIT:-HEAD}" \
      phantun-runtime.phantun.tarball-sha256="${PHANTUN_TARBALL_SHA256}" \
      phantun-runtime.phantun.record="/usr/local/share/phantun-runtime/phantun-source"
USER 65532:65532
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/deno", "run", "--no-prompt", "--quiet", "--config=/app/deno.json", "-P=production", "/app/main.js"]
CMD ["--help"]
