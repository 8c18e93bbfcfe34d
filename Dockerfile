# phantun-runtime: upstream phantun built from source, run by the Deno
# supervisor under its production permission manifest. Needs BuildKit (the
# legacy builder drops the file capabilities set below; it is refused).
#
#   docker build -t phantun-runtime .
#   docker buildx build --platform linux/arm64 --load -t phantun-runtime:arm64 .
#
# Every stage but the last runs on the build machine's architecture
# (--platform=$BUILDPLATFORM) and produces files for TARGETARCH (amd64 or
# arm64): phantun is cross-compiled, Deno is npm's build for the target, and
# the runtime libraries are the target's own Debian packages. The final stage
# only copies the assembled tree: nothing runs on the target's architecture,
# so nothing runs under emulation. The image carries what a scanner needs:
# dpkg status entries for its Debian files, phantun's crates inside its
# binaries (cargo auditable), and a CycloneDX SBOM of the whole.
#
# Reproducible (DESIGN.md §8): every input is pinned (base images by tag,
# Debian packages by debian.lock with their SHA-256, Deno by its npm
# integrity, phantun by PHANTUN_COMMIT, crates by Cargo.lock, the toolchains by
# version), and with SOURCE_DATE_EPOCH set no file is newer than it, so the
# same source and arguments give the same image digest on a BuildKit that
# honours SOURCE_DATE_EPOCH (0.13 and later; scripts/verify-release.ts).
#
# Build args (deploy/README.md, "Build arguments"): PHANTUN_UPSTREAM,
# PHANTUN_OWNER, PHANTUN_REPO, PHANTUN_COMMIT, PHANTUN_TARBALL_SHA256,
# RUNTIME_VERSION, RUNTIME_SOURCE, RUNTIME_REVISION, SOURCE_DATE_EPOCH,
# NPM_REGISTRY, DEBIAN_SNAPSHOT and the *_IMAGE base images below, each pinned
# and overridable.
#
# Scanners (hadolint, checkov, trivy): each finding is fixed, or waived at its
# instruction with the reason, but two hadolint rules waived for the whole file
# (its pragma would have to sit right before the instruction, where trivy's
# sits): ADD fetches a URL, the upstream's refs, which COPY cannot; and two RUNs
# cd on purpose (the records name the .debs without their directory; the tree
# is assembled in /rootfs while Deno runs from /src, where it finds deno.json).
# hadolint global ignore=DL3020,DL3003

# checkov:skip=CKV_DOCKER_7: the FROM lines name these ARGs, each a pinned version tag
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
# The image's time, in seconds since 1970 (a release: its commit's time): the
# SBOM's timestamp, the newest time of any file, and (BuildKit 0.13 and later)
# the image's creation time. Empty: no SBOM timestamp, files keep build times.
ARG SOURCE_DATE_EPOCH=
# Debian's snapshot archive at this time (e.g. 20261203T000000Z) instead of
# the base images' mirror, for a debian.lock older than the mirror's versions.
ARG DEBIAN_SNAPSHOT=

FROM --platform=$BUILDPLATFORM ${DEBIAN_IMAGE} AS tools
ARG TARGETARCH
RUN test -n "$TARGETARCH" || { echo "BuildKit is required (DOCKER_BUILDKIT=1)" >&2; exit 1; }
# The stage's own build tools, from the base image's mirror (the image's
# Debian packages are debian.lock's).
# hadolint ignore=DL3008
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
# checkov:skip=CKV_DOCKER_4: ADD fetches a URL, the upstream's refs, as the fetch's cache key
#trivy:ignore:DS-0005 ADD fetches a URL, the upstream's refs, as the fetch's cache key
ADD ${PHANTUN_UPSTREAM}/${PHANTUN_OWNER}/${PHANTUN_REPO}/info/refs?service=git-upload-pack /tmp/phantun-refs
RUN fetch-phantun.sh

# Build for TARGETARCH with `cargo auditable`, which embeds phantun's crates
# in each binary for scanners: the Rust target and, when it is not the build
# machine's, Debian's cross linker. The same source, however fetched, reuses
# this layer from the cache. Cargo.lock is the source's own, or the one cargo
# wrote when it had none; it goes into the image, and `cargo metadata` (the
# crates' licenses) into the SBOM.
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS build
RUN cargo install --locked cargo-auditable --version 0.7.7
ARG BUILDARCH
ARG TARGETARCH
ARG DEBIAN_SNAPSHOT
COPY debian.lock /usr/local/share/
COPY scripts/debian-fetch.sh /usr/local/bin/
# The cross toolchain at debian.lock's versions; the lock has it for an amd64
# build machine (the release's), and debian-fetch.sh refuses any other.
RUN if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      debian-fetch.sh sources \
      && debian-fetch.sh install "cross-$BUILDARCH-$TARGETARCH" \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=fetch /src /src
WORKDIR /src
RUN case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-gnu gnu=x86_64-linux-gnu linker=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER ;; \
      arm64) target=aarch64-unknown-linux-gnu gnu=aarch64-linux-gnu linker=CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER ;; \
      *) echo "TARGETARCH=$TARGETARCH: only amd64 and arm64 are built (Deno has no other Linux build)" >&2; exit 1 ;; \
    esac \
 && if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      export "$linker=$gnu-gcc"; \
    fi \
 && rustup target add "$target" \
 && if [ -f Cargo.lock ]; then set -- --locked; fi \
 && cargo auditable build --release --target "$target" "$@" \
 && install -D -m 0755 "target/$target/release/client" /out/phantun_client \
 && install -D -m 0755 "target/$target/release/server" /out/phantun_server \
 && install -m 0644 Cargo.lock /out/Cargo.lock \
 && cargo metadata --format-version 1 --locked --offline --filter-platform "$target" >/out/cargo-metadata.json

# Assemble the runtime's whole filesystem in /rootfs: tini, GNU env (to start
# Deno with SIGUSR1 blocked and its own variables removed), deno, phantun with
# cap_net_admin+ep, the libraries they link (rootfs-libs.sh), the supervisor,
# and the records. tini, env, the libraries and os-release come from the
# target architecture's Debian packages, each with its copyright file and a
# dpkg status entry (dpkg-status.sh). The supervisor goes in as one module,
# /app/main.js, that `deno bundle` makes of main.ts and lib/ (Deno's own
# bundler, esbuild, fetched from npm with the stage's CA store): loading
# twelve modules instead of one starts phantun later at every start (DESIGN.md
# §8; the figures in §11). Then sbom.ts writes the SBOM of the finished tree,
# and with SOURCE_DATE_EPOCH no file is left newer than it. The Debian
# packages of the image are debian.lock's; the stage's own tools (readelf,
# setcap, CA certificates) only inspect and mark, and are the mirror's.
FROM --platform=$BUILDPLATFORM ${DEBIAN_IMAGE} AS assemble
ARG TARGETARCH
ARG DEBIAN_SNAPSHOT
COPY debian.lock /usr/local/share/
COPY scripts/debian-fetch.sh scripts/rootfs-libs.sh scripts/dpkg-status.sh /usr/local/bin/
# binutils, ca-certificates and libcap2-bin only inspect and mark: the
# mirror's, as above.
# hadolint ignore=DL3008
RUN { [ "$TARGETARCH" = "$(dpkg --print-architecture)" ] || dpkg --add-architecture "$TARGETARCH"; } \
 && debian-fetch.sh sources \
 && apt-get install -qq -y --no-install-recommends binutils ca-certificates libcap2-bin \
 && debian-fetch.sh download "image-$TARGETARCH" /debs \
 && for deb in /debs/*.deb; do dpkg-deb -x "$deb" /sysroot; done \
 && mkdir /records && (cd /debs && sha256sum -- *.deb) >/records/debs.sha256 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=deno /out/target/deno /rootfs/usr/local/bin/deno
COPY --from=deno /out/target/deno.record /records/
COPY --from=deno /out/build/deno /usr/local/bin/deno
COPY --from=build /out/phantun_client /out/phantun_server /rootfs/usr/local/bin/
COPY --from=build /out/Cargo.lock /rootfs/usr/local/share/phantun-runtime/Cargo.lock
COPY --from=build /out/cargo-metadata.json /records/
COPY --from=fetch /out/phantun-source /rootfs/usr/local/share/phantun-runtime/phantun-source
COPY --from=fetch /out/phantun-source /records/
COPY deno.json deno.lock main.ts /src/
COPY lib/ /src/lib/
COPY scripts/sbom.ts scripts/auditable.ts /src/scripts/
ARG NPM_REGISTRY
ARG RUNTIME_VERSION
ARG RUNTIME_SOURCE
ARG RUNTIME_REVISION
ARG SOURCE_DATE_EPOCH
#trivy:ignore:DS-0013 the tree is assembled in /rootfs, and Deno runs from /src, where it finds deno.json
RUN cd /rootfs \
 && version=$(deno eval 'console.log(JSON.parse(Deno.readTextFileSync("/src/deno.json")).version)') \
 && { [ "$version" = "$RUNTIME_VERSION" ] \
      || { echo "RUNTIME_VERSION=$RUNTIME_VERSION but deno.json has $version" >&2; exit 1; }; } \
 && install -D -m 0755 /sysroot/usr/bin/tini usr/bin/tini \
 && install -D -m 0755 /sysroot/usr/bin/env usr/bin/env \
 && install -D -m 0644 /sysroot/usr/lib/os-release usr/lib/os-release \
 && mkdir etc && ln -s ../usr/lib/os-release etc/os-release \
 && rootfs-libs.sh /sysroot /rootfs usr/bin/tini usr/bin/env usr/local/bin/* \
 && for binary in usr/local/bin/phantun_*; do setcap cap_net_admin+ep "$binary"; done \
 && for deb in /debs/*.deb; do \
      doc=usr/share/doc/$(dpkg-deb --field "$deb" Package); mkdir -p usr/share/doc; \
      if [ -L "/sysroot/$doc" ]; then cp -P "/sysroot/$doc" "$doc"; \
      else install -D -m 0644 "/sysroot/$doc/copyright" "$doc/copyright"; fi; \
    done \
 && dpkg-status.sh /debs /rootfs \
 && mkdir -p run/phantun app \
 && install -m 0644 /src/deno.json /src/deno.lock app/ \
 && cd /src \
 && DENO_DIR=/tmp/deno-bundle DENO_TLS_CA_STORE=system NPM_CONFIG_REGISTRY="$NPM_REGISTRY" \
    deno bundle --quiet --platform=deno --output=/rootfs/app/main.js main.ts \
 && printf 'version=%s\nsource=%s\nrevision=%s\narch=%s\nepoch=%s\n' \
      "$RUNTIME_VERSION" "$RUNTIME_SOURCE" "$RUNTIME_REVISION" "$TARGETARCH" "$SOURCE_DATE_EPOCH" >/records/build \
 && deno run --quiet --allow-read=/rootfs,/records \
      --allow-write=/rootfs/usr/local/share/phantun-runtime/sbom.cdx.json \
      scripts/sbom.ts /rootfs /records /rootfs/usr/local/share/phantun-runtime/sbom.cdx.json \
 && if [ -n "$SOURCE_DATE_EPOCH" ]; then \
      find /rootfs -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +; \
    fi

FROM scratch
COPY --from=assemble /rootfs/ /
WORKDIR /app
ARG RUNTIME_VERSION
ARG RUNTIME_SOURCE
ARG RUNTIME_REVISION
ARG PHANTUN_UPSTREAM
ARG PHANTUN_OWNER
ARG PHANTUN_REPO
ARG PHANTUN_COMMIT
ARG PHANTUN_TARBALL_SHA256
ARG SOURCE_DATE_EPOCH
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
      phantun-runtime.phantun.cargo-lock="/usr/local/share/phantun-runtime/Cargo.lock" \
      phantun-runtime.sbom="/usr/local/share/phantun-runtime/sbom.cdx.json" \
      phantun-runtime.source-date-epoch="${SOURCE_DATE_EPOCH}" \
      phantun-runtime.permissions='{"env":["MODE","IFACE_NAME","IFACE_FILE"],"run":["/usr/local/bin/phantun_client","/usr/local/bin/phantun_server"],"write":["/run/phantun/iface"],"read":["/run/phantun/iface"]}'
USER 65532:65532
# No health check: the container lives exactly as long as phantun (the
# supervisor exits with it), and nothing in it listens to be probed.
HEALTHCHECK NONE
# env starts Deno with SIGUSR1 blocked (Deno opens its V8 inspector when it
# arrives; blocked in all of Deno's threads, it stays pending) and with the
# variables Deno reads for itself removed or pinned; Deno runs V8 without its
# JIT (no writable-executable memory). Written by `deno task launch` from
# scripts/launch.ts and scripts/deno_env.ts (DESIGN.md §3, §4 and §8).
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/env", "--block-signal=USR1", \
  "-u", "DENO_UNSTABLE_CONTROL_SOCK", "-u", "DENO_PERMISSION_BROKER_PATH", \
  "-u", "DENO_AUDIT_PERMISSIONS", "-u", "DENO_TRACE_PERMISSIONS", "-u", \
  "COMPLETE", "-u", "DENO_CONNECTED", "-u", "DENO_DEPLOY_TUNNEL_ENDPOINT", \
  "-u", "DENO_DEPLOY_TOKEN", "-u", "DENO_DEPLOY_ORG", "-u", \
  "DENO_DEPLOY_APP", "-u", "DENO_CACHE_LSC_ENDPOINT", "-u", \
  "DENO_UNSTABLE_CRON_SOCK", "-u", "DENO_DONT_USE_INTERNAL_BASE_UPGRADE_URL", \
  "-u", "DENO_AUTH_TOKENS", "-u", "DENO_AUTO_SERVE", "-u", \
  "DENO_SERVE_ADDRESS", "-u", "X_DENO_FETCH_TOKEN", "-u", "CDN_LOOP", "-u", \
  "HTTP_PROXY", "-u", "http_proxy", "-u", "HTTPS_PROXY", "-u", "https_proxy", \
  "-u", "ALL_PROXY", "-u", "all_proxy", "-u", "NO_PROXY", "-u", "no_proxy", \
  "-u", "NODE_USE_ENV_PROXY", "-u", "DENO_KV_DEFAULT_PATH", "-u", \
  "DENO_KV_PATH_PREFIX", "-u", "DENO_KV_ACCESS_TOKEN", "-u", "OTEL_DENO", \
  "-u", "OTEL_DENO_TRACING", "-u", "OTEL_DENO_METRICS", "-u", \
  "OTEL_DENO_CONSOLE", "-u", "OTEL_DENO_VSOCK", "-u", "OTEL_PROPAGATORS", \
  "-u", "DENO_UNSTABLE_OTEL_DETERMINISTIC", "-u", \
  "OTEL_EXPORTER_OTLP_PROTOCOL", "-u", "OTEL_EXPORTER_OTLP_ENDPOINT", "-u", \
  "OTEL_EXPORTER_OTLP_HEADERS", "-u", "OTEL_EXPORTER_OTLP_TIMEOUT", "-u", \
  "OTEL_EXPORTER_OTLP_COMPRESSION", "-u", "OTEL_EXPORTER_OTLP_INSECURE", \
  "-u", "OTEL_EXPORTER_OTLP_CERTIFICATE", "-u", \
  "OTEL_EXPORTER_OTLP_CLIENT_KEY", "-u", \
  "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "-u", \
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "-u", \
  "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "-u", \
  "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "-u", \
  "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "-u", \
  "OTEL_EXPORTER_OTLP_METRICS_HEADERS", "-u", \
  "OTEL_EXPORTER_OTLP_LOGS_HEADERS", "-u", \
  "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-u", \
  "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "-u", \
  "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "-u", \
  "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "-u", \
  "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "-u", \
  "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "-u", \
  "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "-u", \
  "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "-u", \
  "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "-u", \
  "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "-u", \
  "OTEL_METRIC_EXPORT_INTERVAL", "-u", "OTEL_TRACES_SAMPLER", "-u", \
  "OTEL_TRACES_SAMPLER_ARG", "-u", "OTEL_SPAN_EVENT_COUNT_LIMIT", "-u", \
  "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "-u", "OTEL_ATTRIBUTE_COUNT_LIMIT", \
  "-u", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-u", \
  "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-u", "OTEL_RESOURCE_ATTRIBUTES", \
  "-u", "OTEL_SERVICE_NAME", "-u", "OTEL_BSP_SCHEDULE_DELAY", "-u", \
  "OTEL_BSP_MAX_QUEUE_SIZE", "-u", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-u", \
  "OTEL_BSP_EXPORT_TIMEOUT", "-u", "OTEL_BSP_MAX_CONCURRENT_EXPORTS", "-u", \
  "OTEL_BLRP_SCHEDULE_DELAY", "-u", "OTEL_BLRP_EXPORT_TIMEOUT", "-u", \
  "OTEL_BLRP_MAX_QUEUE_SIZE", "-u", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "-u", \
  "DENO_CERT", "-u", "DENO_TLS_CA_STORE", "-u", "NODE_EXTRA_CA_CERTS", "-u", \
  "NODE_USE_SYSTEM_CA", "-u", "NODE_TLS_REJECT_UNAUTHORIZED", "-u", \
  "SSL_CERT_FILE", "-u", "SSL_CERT_DIR", "-u", "SSLKEYLOGFILE", "-u", \
  "DENO_COVERAGE_DIR", "-u", "DENO_SNAPSHOT_IMPORT_GRAPH", "-u", \
  "DENO_WEBGPU_TRACE", "-u", "SQLITE_TMPDIR", "-u", "NODE_OPTIONS", "-u", \
  "DENO_COMPAT", "-u", "DENO_CONDITIONS", "-u", \
  "DENO_UNSTABLE_LAZY_DYNAMIC_IMPORTS", "-u", \
  "DENO_UNSTABLE_NPM_LAZY_CACHING", "-u", "DENO_UNSTABLE_RAW_IMPORTS", "-u", \
  "DENO_UNSTABLE_SLOPPY_IMPORTS", "-u", "DENO_UNSTABLE_TSGO", "-u", \
  "DENO_INSTALL_ARCH", "-u", "DENO_DONT_USE_INTERNAL_NODE_COMPAT_STATE_FD", \
  "-u", "DENO_NO_PACKAGE_JSON", "-u", "JSR_URL", "-u", "JSR_NPM_URL", "-u", \
  "NPM_CONFIG_REGISTRY", "-u", "NPM_CONFIG_REPLACE_REGISTRY_HOST", "-u", \
  "npm_config_replace_registry_host", "-u", "NPM_CONFIG_MIN_RELEASE_AGE", \
  "-u", "npm_config_min_release_age", "-u", "DENO_EMIT_CACHE_MODE", "-u", \
  "DENO_CACHE_DB_MODE", "-u", "DENO_DISABLE_VERBATIM_MODULE_SYNTAX", "-u", \
  "DENO_PATCH_REACT_CVE", "-u", "DENO_INTERNAL_NPM_CMD_NAME", "-u", \
  "DENO_INTERNAL_IS_LIFECYCLE_SCRIPT", "-u", \
  "DENO_KV_REQUIRES_DISTRIBUTED_DATABASE", "-u", "DENO_KV_DB_MODE", "-u", \
  "DENO_DISABLE_OFFSCREEN_CANVAS", "-u", "DENO_V8_FLAGS", "-u", \
  "DENO_USE_CGROUPS", "-u", "DENO_TOKIO_EVENT_INTERVAL", "-u", \
  "DENO_TOKIO_GLOBAL_QUEUE_INTERVAL", "-u", \
  "DENO_TOKIO_MAX_IO_EVENTS_PER_TICK", "-u", "DENO_TOKIO_METRICS", "-u", \
  "DENO_TOKIO_METRICS_INTERVAL", "-u", "DENO_USR2_MEMORY_TRIM", "-u", \
  "DENO_USE_WRITEV", "-u", "DENO_WEBGPU_BACKEND", "-u", \
  "DENO_WEBGPU_DX12_COMPILER", "-u", "OPENSSL_ia32cap", "-u", \
  "SIMDUTF_FORCE_IMPLEMENTATION", "-u", "ICU_DATA", "-u", \
  "ICU_TIMEZONE_FILES_DIR", "-u", "DENO_LOG", "-u", "DENO_LOG_STYLE", "-u", \
  "DENO_LOG_LAZY_LOAD", "-u", "DENO_STARTUP_PHASES", "-u", \
  "DENO_NO_FILTER_FRAMES", "-u", "NODE_DEBUG", "-u", "NODE_DEBUG_NATIVE", \
  "-u", "DENO_NODE_TRACE_EVENT_CATEGORIES", "-u", "DENO_NODE_USE_OPENSSL_CA", \
  "-u", "DENO_EXTRA_STDIO_FDS", "-u", "NODE_CHANNEL_FD", "-u", \
  "NODE_CHANNEL_SERIALIZATION_MODE", "-u", "NODE_UNIQUE_ID", "-u", \
  "NODE_CLUSTER_SCHED_POLICY", "-u", "DENO_NODE_SHIM_ACTIVE", "-u", \
  "UNSTABLE_INSPECTOR_WS_EVENTS", "DENO_NO_UPDATE_CHECK=1", \
  "OTEL_SDK_DISABLED=true", "DENO_DISABLE_NODE_SHIM=1", "DENO_DIR=/dev/null", \
  "/usr/local/bin/deno", "run", "--no-prompt", "--quiet", \
  "--v8-flags=--jitless", "--config=/app/deno.json", "-P=production", \
  "/app/main.js"]
CMD ["--help"]
