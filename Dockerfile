# phantun-runtime: upstream phantun built from source, run by the Deno
# supervisor under its production permission manifest. Needs BuildKit (the
# legacy builder drops the file capabilities set below; it is refused).
#
#   docker build -t phantun-runtime .
#   docker buildx build --platform linux/arm64 --load -t phantun-runtime:arm64 .
#
# Every stage but the last runs on the build machine's architecture
# (--platform=$BUILDPLATFORM) and produces files for TARGETARCH (amd64 or
# arm64): phantun is cross-compiled, Deno and the runtime libraries are the
# target's own packages. Only the final stage is the target's, and its one
# RUN (filling V8's code cache) is the only step that may run under emulation.
#
# Build args (see README): PHANTUN_UPSTREAM, PHANTUN_OWNER, PHANTUN_REPO,
# PHANTUN_COMMIT, PHANTUN_TARBALL_SHA256, RUNTIME_VERSION, RUNTIME_SOURCE,
# RUNTIME_REVISION, NPM_REGISTRY and the *_IMAGE base images below, each
# pinned and overridable.

ARG DEBIAN_IMAGE=debian:12.15-slim
ARG RUST_IMAGE=rust:1.96.0-slim-bookworm
ARG NPM_REGISTRY=https://registry.npmjs.org
ARG PHANTUN_UPSTREAM=https://github.com
ARG PHANTUN_OWNER=dndx
ARG PHANTUN_REPO=phantun
ARG PHANTUN_COMMIT=
ARG PHANTUN_TARBALL_SHA256=
# Must equal "version" in deno.json: the build checks it.
ARG RUNTIME_VERSION=0.1.0
# This repository's URL and the commit the image is built from (labels).
ARG RUNTIME_SOURCE=
ARG RUNTIME_REVISION=

FROM --platform=$BUILDPLATFORM ${DEBIAN_IMAGE} AS tools
ARG TARGETARCH
RUN test -n "$TARGETARCH" || { echo "BuildKit is required (DOCKER_BUILDKIT=1)" >&2; exit 1; }
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git \
 && rm -rf /var/lib/apt/lists/*

# Deno for the build machine (to bundle) and for the target (to run), from
# npm, each checked against its pinned integrity (fetch-deno.sh).
FROM tools AS deno
ARG BUILDARCH
ARG TARGETARCH
ARG NPM_REGISTRY
COPY scripts/fetch-deno.sh /usr/local/bin/
RUN fetch-deno.sh "$TARGETARCH" /out/target \
 && if [ "$BUILDARCH" = "$TARGETARCH" ]; then cp -a /out/target /out/build; \
    else fetch-deno.sh "$BUILDARCH" /out/build; fi

# Fetch phantun's source into /src and record what it is (fetch-phantun.sh).
FROM tools AS fetch
COPY scripts/fetch-phantun.sh /usr/local/bin/
ARG PHANTUN_UPSTREAM
ARG PHANTUN_OWNER
ARG PHANTUN_REPO
ARG PHANTUN_COMMIT
ARG PHANTUN_TARBALL_SHA256
# The upstream's refs: a new default-branch HEAD invalidates the cached fetch.
ADD ${PHANTUN_UPSTREAM}/${PHANTUN_OWNER}/${PHANTUN_REPO}/info/refs?service=git-upload-pack /tmp/phantun-refs
RUN fetch-phantun.sh

# Build for TARGETARCH: the Rust target and, when it is not the build
# machine's, Debian's cross linker. The same source, however fetched, reuses
# this layer from the cache. Cargo.lock is the source's own, or the one cargo
# wrote when it had none; it goes into the image for scanners.
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS build
ARG BUILDARCH
ARG TARGETARCH
COPY --from=fetch /src /src
WORKDIR /src
RUN case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-gnu gnu=x86_64-linux-gnu ;; \
      arm64) target=aarch64-unknown-linux-gnu gnu=aarch64-linux-gnu ;; \
      *) echo "TARGETARCH=$TARGETARCH: only amd64 and arm64 are built (Deno has no other Linux build)" >&2; exit 1 ;; \
    esac \
 && if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends "gcc-$(echo "$gnu" | tr _ -)" "libc6-dev-$TARGETARCH-cross" \
      && rm -rf /var/lib/apt/lists/* \
      && export "CARGO_TARGET_$(echo "$target" | tr a-z- A-Z_)_LINKER=$gnu-gcc"; \
    fi \
 && rustup target add "$target" \
 && cargo build --release --target "$target" $(test -f Cargo.lock && echo --locked) \
 && install -D -m 0755 "target/$target/release/client" /out/phantun_client \
 && install -D -m 0755 "target/$target/release/server" /out/phantun_server \
 && install -m 0644 Cargo.lock /out/Cargo.lock

# Assemble the runtime's whole filesystem in /rootfs: tini, GNU env (to start
# Deno with SIGUSR1 blocked), deno, phantun with cap_net_admin+ep, the
# libraries they link (rootfs-libs.sh), the supervisor and the records. tini,
# env and the libraries come from the target architecture's Debian packages.
# The supervisor goes in as one module, /app/main.js, that `deno bundle` makes
# of main.ts and lib/ (Deno's own bundler, esbuild, fetched from npm with the
# stage's CA store): loading twelve modules instead of one cost ~1.5-3 ms at
# every start (DESIGN.md §8, §11).
FROM --platform=$BUILDPLATFORM ${DEBIAN_IMAGE} AS assemble
ARG TARGETARCH
RUN { [ "$TARGETARCH" = "$(dpkg --print-architecture)" ] || dpkg --add-architecture "$TARGETARCH"; } \
 && apt-get update \
 && apt-get install -y --no-install-recommends binutils ca-certificates libcap2-bin \
 && cd /tmp \
 && apt-get download "libc6:$TARGETARCH" "libgcc-s1:$TARGETARCH" "tini:$TARGETARCH" "coreutils:$TARGETARCH" \
 && for deb in *.deb; do dpkg-deb -x "$deb" /sysroot; done \
 && rm -rf /var/lib/apt/lists/* /tmp/*.deb
COPY scripts/rootfs-libs.sh /usr/local/bin/
COPY --from=deno /out/target/deno /rootfs/usr/local/bin/deno
COPY --from=deno /out/build/deno /usr/local/bin/deno
COPY --from=build /out/phantun_client /out/phantun_server /rootfs/usr/local/bin/
COPY --from=build /out/Cargo.lock /rootfs/usr/local/share/phantun-runtime/Cargo.lock
COPY --from=fetch /out/phantun-source /rootfs/usr/local/share/phantun-runtime/phantun-source
COPY deno.json deno.lock main.ts /src/
COPY lib/ /src/lib/
ARG NPM_REGISTRY
ARG RUNTIME_VERSION
RUN cd /rootfs \
 && version=$(deno eval 'console.log(JSON.parse(Deno.readTextFileSync("/src/deno.json")).version)') \
 && { [ "$version" = "$RUNTIME_VERSION" ] \
      || { echo "RUNTIME_VERSION=$RUNTIME_VERSION but deno.json has $version" >&2; exit 1; }; } \
 && install -D -m 0755 /sysroot/usr/bin/tini-static usr/bin/tini \
 && install -D -m 0755 /sysroot/usr/bin/env usr/bin/env \
 && rootfs-libs.sh /sysroot /rootfs usr/bin/env usr/local/bin/* \
 && for binary in usr/local/bin/phantun_*; do setcap cap_net_admin+ep "$binary"; done \
 && mkdir -p run/phantun app \
 && cp /src/deno.json /src/deno.lock app/ \
 && cd /src \
 && DENO_DIR=/tmp/deno-bundle DENO_TLS_CA_STORE=system NPM_CONFIG_REGISTRY="$NPM_REGISTRY" \
    deno bundle --quiet --platform=deno --output=/rootfs/app/main.js main.ts

FROM scratch
COPY --from=assemble /rootfs/ /
ENV DENO_DIR=/deno-dir DENO_NO_UPDATE_CHECK=1
WORKDIR /app
# Run the supervisor once now, so that V8's code cache for it is in the image.
RUN ["/usr/local/bin/deno", "run", "--no-prompt", "--quiet", "--config=/app/deno.json", "-P=production", "/app/main.js", "--version"]
ARG RUNTIME_VERSION
ARG RUNTIME_SOURCE
ARG RUNTIME_REVISION
ARG PHANTUN_UPSTREAM
ARG PHANTUN_OWNER
ARG PHANTUN_REPO
ARG PHANTUN_COMMIT
ARG PHANTUN_TARBALL_SHA256
LABEL org.opencontainers.image.title="phantun-runtime" \
      org.opencontainers.image.description="Upstream phantun (UDP over fake TCP) client and server under a Deno supervisor" \
      org.opencontainers.image.version="${RUNTIME_VERSION}" \
      org.opencontainers.image.source="${RUNTIME_SOURCE}" \
      org.opencontainers.image.revision="${RUNTIME_REVISION}" \
      org.opencontainers.image.licenses="MIT AND (MIT OR Apache-2.0)" \
      phantun-runtime.phantun.repository="${PHANTUN_UPSTREAM}/${PHANTUN_OWNER}/${PHANTUN_REPO}" \
      phantun-runtime.phantun.commit="${PHANTUN_COMMIT:-HEAD}" \
      phantun-runtime.phantun.tarball-sha256="${PHANTUN_TARBALL_SHA256}" \
      phantun-runtime.phantun.record="/usr/local/share/phantun-runtime/phantun-source" \
      phantun-runtime.phantun.cargo-lock="/usr/local/share/phantun-runtime/Cargo.lock"
USER 65532:65532
# env --block-signal=USR1: Deno opens its V8 inspector when SIGUSR1 arrives;
# blocked in all of Deno's threads, the signal stays pending (DESIGN.md §4).
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/env", "--block-signal=USR1", "/usr/local/bin/deno", "run", "--no-prompt", "--quiet", "--config=/app/deno.json", "-P=production", "/app/main.js"]
CMD ["--help"]
