/**
 * The environment every launch gives Deno. Deno reads some variables for
 * itself, outside `--allow-env` and the permission checks: they can make it
 * connect somewhere, write files, load other code, change V8 or leave the
 * permission system altogether (DESIGN.md, "Deno's own environment"). Each
 * name Deno 2.9.6 reads on `deno run`'s path is here: removed (`unset`),
 * pinned to a value (`pin`), or kept, with the reason. Everything else in the
 * environment reaches Deno and phantun unchanged (RUST_LOG and the like).
 *
 * The list was enumerated from Deno's source (the commands in DESIGN.md) and
 * is held against the binary itself by tests/deno_env_test.ts, which records
 * every getenv() of the real supervisor and fails on a name not listed here.
 * scripts/launch.ts turns it into the launch line's `env` words.
 */

/** What the launch does with one variable. */
export type Disposition =
  | { readonly unset: string }
  | { readonly pin: string; readonly why: string; readonly imageOnly?: true }
  | { readonly keep: string };

const unset = (why: string, names: string): [string, Disposition][] =>
  names.split(/\s+/).filter((name) => name !== "").map((
    name,
  ) => [name, { unset: why }]);

/** Every variable Deno reads for itself on `deno run`'s path, and what the launch does with it. */
export const DENO_ENV: ReadonlyMap<string, Disposition> = new Map([
  ...unset(
    "replaces the permission system or the command line",
    `DENO_UNSTABLE_CONTROL_SOCK DENO_PERMISSION_BROKER_PATH
     DENO_AUDIT_PERMISSIONS DENO_TRACE_PERMISSIONS COMPLETE`,
  ),
  ...unset(
    "connects outside the net grant",
    `DENO_CONNECTED DENO_DEPLOY_TUNNEL_ENDPOINT DENO_DEPLOY_TOKEN
     DENO_DEPLOY_ORG DENO_DEPLOY_APP DENO_CACHE_LSC_ENDPOINT
     DENO_UNSTABLE_CRON_SOCK DENO_DONT_USE_INTERNAL_BASE_UPGRADE_URL
     DENO_AUTH_TOKENS DENO_AUTO_SERVE DENO_SERVE_ADDRESS X_DENO_FETCH_TOKEN
     CDN_LOOP HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY
     all_proxy NO_PROXY no_proxy NODE_USE_ENV_PROXY DENO_KV_DEFAULT_PATH
     DENO_KV_PATH_PREFIX DENO_KV_ACCESS_TOKEN`,
  ),
  ...unset(
    "sends telemetry outside the net grant",
    `OTEL_DENO OTEL_DENO_TRACING OTEL_DENO_METRICS OTEL_DENO_CONSOLE
     OTEL_DENO_VSOCK OTEL_PROPAGATORS DENO_UNSTABLE_OTEL_DETERMINISTIC
     OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_ENDPOINT
     OTEL_EXPORTER_OTLP_HEADERS OTEL_EXPORTER_OTLP_TIMEOUT
     OTEL_EXPORTER_OTLP_COMPRESSION OTEL_EXPORTER_OTLP_INSECURE
     OTEL_EXPORTER_OTLP_CERTIFICATE OTEL_EXPORTER_OTLP_CLIENT_KEY
     OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE
     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_EXPORTER_OTLP_METRICS_ENDPOINT
     OTEL_EXPORTER_OTLP_LOGS_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_HEADERS
     OTEL_EXPORTER_OTLP_METRICS_HEADERS OTEL_EXPORTER_OTLP_LOGS_HEADERS
     OTEL_EXPORTER_OTLP_TRACES_TIMEOUT OTEL_EXPORTER_OTLP_METRICS_TIMEOUT
     OTEL_EXPORTER_OTLP_LOGS_TIMEOUT OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
     OTEL_EXPORTER_OTLP_METRICS_PROTOCOL OTEL_EXPORTER_OTLP_LOGS_PROTOCOL
     OTEL_EXPORTER_OTLP_TRACES_COMPRESSION
     OTEL_EXPORTER_OTLP_METRICS_COMPRESSION OTEL_EXPORTER_OTLP_LOGS_COMPRESSION
     OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE
     OTEL_METRIC_EXPORT_INTERVAL OTEL_TRACES_SAMPLER OTEL_TRACES_SAMPLER_ARG
     OTEL_SPAN_EVENT_COUNT_LIMIT OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT
     OTEL_ATTRIBUTE_COUNT_LIMIT OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT
     OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT OTEL_RESOURCE_ATTRIBUTES
     OTEL_SERVICE_NAME OTEL_BSP_SCHEDULE_DELAY OTEL_BSP_MAX_QUEUE_SIZE
     OTEL_BSP_MAX_EXPORT_BATCH_SIZE OTEL_BSP_EXPORT_TIMEOUT
     OTEL_BSP_MAX_CONCURRENT_EXPORTS OTEL_BLRP_SCHEDULE_DELAY
     OTEL_BLRP_EXPORT_TIMEOUT OTEL_BLRP_MAX_QUEUE_SIZE
     OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`,
  ),
  ...unset(
    "changes what TLS trusts, or writes its secrets",
    `DENO_CERT DENO_TLS_CA_STORE NODE_EXTRA_CA_CERTS NODE_USE_SYSTEM_CA
     NODE_TLS_REJECT_UNAUTHORIZED SSL_CERT_FILE SSL_CERT_DIR SSLKEYLOGFILE`,
  ),
  ...unset(
    "writes files outside the write grant",
    `DENO_COVERAGE_DIR DENO_SNAPSHOT_IMPORT_GRAPH DENO_WEBGPU_TRACE
     SQLITE_TMPDIR`,
  ),
  ...unset(
    "loads other code or resolves modules differently",
    `NODE_OPTIONS DENO_COMPAT DENO_CONDITIONS DENO_UNSTABLE_LAZY_DYNAMIC_IMPORTS
     DENO_UNSTABLE_NPM_LAZY_CACHING DENO_UNSTABLE_RAW_IMPORTS
     DENO_UNSTABLE_SLOPPY_IMPORTS DENO_UNSTABLE_TSGO DENO_INSTALL_ARCH
     DENO_DONT_USE_INTERNAL_NODE_COMPAT_STATE_FD DENO_NO_PACKAGE_JSON JSR_URL
     JSR_NPM_URL NPM_CONFIG_REGISTRY NPM_CONFIG_REPLACE_REGISTRY_HOST
     npm_config_replace_registry_host NPM_CONFIG_MIN_RELEASE_AGE
     npm_config_min_release_age DENO_EMIT_CACHE_MODE DENO_CACHE_DB_MODE
     DENO_DISABLE_VERBATIM_MODULE_SYNTAX DENO_PATCH_REACT_CVE
     DENO_INTERNAL_NPM_CMD_NAME DENO_INTERNAL_IS_LIFECYCLE_SCRIPT
     DENO_KV_REQUIRES_DISTRIBUTED_DATABASE DENO_KV_DB_MODE
     DENO_DISABLE_OFFSCREEN_CANVAS`,
  ),
  ...unset(
    "reconfigures V8, the event loop, signal handlers or CPU features",
    `DENO_V8_FLAGS DENO_USE_CGROUPS DENO_TOKIO_EVENT_INTERVAL
     DENO_TOKIO_GLOBAL_QUEUE_INTERVAL DENO_TOKIO_MAX_IO_EVENTS_PER_TICK
     DENO_TOKIO_METRICS DENO_TOKIO_METRICS_INTERVAL DENO_USR2_MEMORY_TRIM
     DENO_USE_WRITEV DENO_WEBGPU_BACKEND DENO_WEBGPU_DX12_COMPILER
     OPENSSL_ia32cap SIMDUTF_FORCE_IMPLEMENTATION ICU_DATA
     ICU_TIMEZONE_FILES_DIR`,
  ),
  ...unset(
    "adds output to the runtime's one-line messages",
    `DENO_LOG DENO_LOG_STYLE DENO_LOG_LAZY_LOAD DENO_STARTUP_PHASES
     DENO_NO_FILTER_FRAMES NODE_DEBUG NODE_DEBUG_NATIVE
     DENO_NODE_TRACE_EVENT_CATEGORIES DENO_NODE_USE_OPENSSL_CA`,
  ),
  ...unset(
    "hands Deno inherited descriptors or IPC channels",
    `DENO_EXTRA_STDIO_FDS NODE_CHANNEL_FD NODE_CHANNEL_SERIALIZATION_MODE
     NODE_UNIQUE_ID NODE_CLUSTER_SCHED_POLICY DENO_NODE_SHIM_ACTIVE
     UNSTABLE_INSPECTOR_WS_EVENTS`,
  ),
  ["DENO_NO_UPDATE_CHECK", {
    pin: "1",
    why: "otherwise `deno run` asks dl.deno.land for a newer version",
  }],
  ["OTEL_SDK_DISABLED", {
    pin: "true",
    why: "telemetry stays off even if a new OTEL_DENO* switch appears",
  }],
  ["DENO_DISABLE_NODE_SHIM", {
    pin: "1",
    why: "otherwise `deno run` writes a `node` link into DENO_DIR",
  }],
  ["DENO_DIR", {
    pin: "/dev/null",
    imageOnly: true,
    why:
      "a file, not a directory: Deno keeps its caches in memory and writes nothing, whoever runs it (root too); removed outside the image",
  }],
  ...[
    ["PATH", "the supervisor runs absolute paths; phantun's own"],
    ["HOME", "Deno's cache fallback (DENO_DIR decides in the image)"],
    ["XDG_CACHE_HOME", "Deno's cache fallback (DENO_DIR decides in the image)"],
    ["TMPDIR", "Deno.makeTemp's default, under the write grant"],
    ["DENO_NO_PROMPT", "only turns prompts off, as --no-prompt does"],
    ["REQUEST_METHOD", "only makes Deno ignore HTTP_PROXY"],
    ["TERM", "colours"],
    ["TMUX", "colours"],
    ["CI", "colours"],
    ["COLORTERM", "colours"],
    ["NO_COLOR", "colours"],
    ["FORCE_COLOR", "colours"],
    ["TZ", "the time zone, phantun's too"],
    ["LANG", "the C library's locale"],
    ["LC_ALL", "the C library's locale"],
    ["LC_MESSAGES", "the C library's locale"],
    ["RUST_BACKTRACE", "a panic's backtrace, phantun's too"],
    ["RUST_LIB_BACKTRACE", "a panic's backtrace, phantun's too"],
    ["RUST_MIN_STACK", "thread stack size, phantun's too"],
  ].map(([name, keep]): [string, Disposition] => [name, { keep }]),
]);

/**
 * What a launch does with Deno's variables: the names it removes and the
 * values it pins. Outside the image (`image: false`) an `imageOnly` pin
 * (DENO_DIR) is removed instead.
 */
export function launchEnv(
  image: boolean,
): { removed: string[]; pinned: [string, string][] } {
  const removed: string[] = [];
  const pinned: [string, string][] = [];
  for (const [name, how] of DENO_ENV) {
    if ("unset" in how) removed.push(name);
    else if ("pin" in how) {
      if (image || !how.imageOnly) pinned.push([name, how.pin]);
      else removed.push(name);
    }
  }
  return { removed, pinned };
}
