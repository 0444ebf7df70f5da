//! Every variable the gateway reads besides the listen address, keys,
//! tokens and the bus (every component's), declared once for README's
//! table (`grocery env`).

use settings::{Kind::*, Var, key};

/// The gateway's own variables.
pub const ENV: &[Var] = &[
    Var {
        file: &[key("serving.threads", Integer)],
        names: &["GATEWAY_THREADS"],
        used_by: "gateway",
        default: "one per core",
        meaning: "threads serving the API, each a single-threaded runtime that runs its \
                  connections' requests to the end",
    },
    Var {
        file: &[key("serving.executions", Integer)],
        names: &["GATEWAY_EXECUTIONS"],
        used_by: "gateway",
        default: "`20`",
        meaning: "operations each serving thread executes at once; the others wait their turn, \
                  at most 50 ms, then run anyway (`0`: no bound). Bounds the memory of a burst",
    },
    Var {
        file: &[key("serving.poll_us", Integer)],
        names: &["GATEWAY_POLL_US"],
        used_by: "gateway",
        default: "`1000`",
        meaning: "while a serving thread has at most one request in flight, it polls its sockets \
                  instead of sleeping after a request starts, sends a fetch or ends, for windows \
                  that follow how long its subgraphs take to answer and its clients to come back, \
                  of at most this many µs (`0`: never; at most `10000`). Under a CPU quota set \
                  `0`, as the Kubernetes manifests do: measured with a 1-CPU quota, polling \
                  took 20 µs off a lone request's p50 but doubled the gateway's CPU per request \
                  at that pace (150 µs against 75), at the same throughput under load",
    },
    Var {
        file: &[key("all_subgraphs.deduplication", Bool)],
        names: &["SUBGRAPH_DEDUPLICATION"],
        used_by: "`serve gateway`",
        default: "`true`",
        meaning: "identical subgraph queries in flight at once (same subgraph, token and body) \
                  share one fetch; no fetch of a mutation's plan is ever shared",
    },
    Var {
        file: &[key("request_deduplication", Bool)],
        names: &["REQUEST_DEDUPLICATION"],
        used_by: "`serve gateway`",
        default: "`false`",
        meaning: "identical client queries in flight at once (same operation, variables, caller and \
                  headers) share one execution and answer, as Hive Router's `router.dedupe`; \
                  each still passes tokens, limits, rates and quotas on its own; never mutations",
    },
    Var {
        file: &[key("supergraph.path", Text)],
        names: &["SUPERGRAPH_PATH"],
        used_by: "`serve gateway`",
        default: "`schema/supergraph.graphql`",
        meaning: "the supergraph to serve (`dev` composes its own)",
    },
    Var {
        file: &[key("introspection", Bool)],
        names: &["INTROSPECTION"],
        used_by: "`serve gateway`",
        default: "`false` (`dev`: on)",
        meaning: "answer `__schema`/`__type`",
    },
    Var {
        file: &[key("graphiql", Bool)],
        names: &["GRAPHIQL"],
        used_by: "`serve gateway`",
        default: "`false` (`dev`: on)",
        meaning: "a browser's GET `/graphql` gets the GraphiQL page (useful with \
                  `INTROSPECTION=true`)",
    },
    Var {
        file: &[key("telemetry.metrics_addr", Text)],
        names: &["METRICS_ADDR"],
        used_by: "gateway",
        default: "none: `serve` has no `/metrics`, `dev` serves it on the API port",
        meaning: "`host:port` of a listener of its own for `/metrics` (e.g. `0.0.0.0:9464` in a \
                  container, scraped inside the cluster); `serve gateway` never serves \
                  `/metrics` on the API port",
    },
    Var {
        file: &[key("rest.dir", Text)],
        names: &["REST_DIR"],
        used_by: "gateway",
        default: "`schema/rest`",
        meaning: "REST route files (`*.yaml`, format in \"REST endpoints\"), each route a \
                  trusted document of `PERSISTED_DIR`, served on the API port (reloaded on \
                  change; `off`: none). Set, routes that do not load stop the gateway; the \
                  default directory's are left out with a warning when they do not fit the \
                  supergraph (a gateway over another one), and a missing one is none",
    },
    Var {
        file: &[key("rest.port", Integer)],
        names: &["REST_PORT"],
        used_by: "gateway",
        default: "none (`dev`: `5050`)",
        meaning: "a listener of its own for the REST routes (and `/api/openapi.json`, \
                  `/api/docs`) on the gateway's host, where devices built for the Ordering API \
                  look (`0`: none)",
    },
    Var {
        file: &[key("csrf.enabled", Bool)],
        names: &["CSRF_PREVENTION"],
        used_by: "gateway",
        default: "`true`",
        meaning: "refuse operations a browser could send cross-site without a preflight (see \
                  [Cross-site requests](#cross-site-requests)); `false` only behind something \
                  that does it",
    },
    Var {
        file: &[key("csrf.required_headers", List)],
        names: &["CSRF_REQUIRED_HEADERS"],
        used_by: "gateway",
        default: "`apollo-require-preflight,x-apollo-operation-name,graphql-preflight`",
        meaning: "headers any of which marks a request as sent by a script",
    },
    Var {
        file: &[key("limits.max_errors", Integer)],
        names: &["MAX_ERRORS"],
        used_by: "gateway",
        default: "`100`",
        meaning: "the most errors one response carries; the last one (`TOO_MANY_ERRORS`, \
                  `extensions.dropped`) says how many more were left out",
    },
    Var {
        file: &[key("subgraphs.*.ready_url", Text)],
        names: &["SUBGRAPH_READY_URLS"],
        used_by: "`serve gateway`",
        default: "each subgraph's `/ready` beside its GraphQL path",
        meaning: "`name=http://…,…` health URLs `/ready` asks instead (a subgraph with no such \
                  page, 404, is asked `{ __typename }`)",
    },
    Var {
        file: &[key("all_subgraphs.ready_cache", Duration)],
        names: &["READY_CACHE"],
        used_by: "`serve gateway`",
        default: "`2s`",
        meaning: "how long `/ready` reuses its subgraphs' answers (each probe has 2 s)",
    },
    Var {
        file: &[key("cors.origins", List)],
        names: &["CORS_ORIGINS"],
        used_by: "`serve gateway`",
        default: "none (`dev`: any localhost origin)",
        meaning: "browser origins allowed: `*`, `localhost`, or \
                  `https://a.example,https://b.example`",
    },
    Var {
        file: &[key("cors.allow_headers", List)],
        names: &["CORS_ALLOW_HEADERS"],
        used_by: "gateway",
        default: "none",
        meaning: "`x-tenant,…`: request headers browsers may send besides the ones every \
                  preflight allows (content type, authorization, trace context, client names)",
    },
    Var {
        file: &[key("cors.credentials", Bool)],
        names: &["CORS_CREDENTIALS"],
        used_by: "`serve gateway`",
        default: "`false`",
        meaning: "let browsers send credentials",
    },
    Var {
        file: &[
            key("limits.max_tokens", Integer),
            key("limits.max_depth", Integer),
            key("limits.max_fields", Integer),
            key("limits.max_aliases", Integer),
            key("limits.max_root_fields", Integer),
            key("limits.max_directives", Integer),
        ],
        names: &[
            "MAX_TOKENS",
            "MAX_DEPTH",
            "MAX_FIELDS",
            "MAX_ALIASES",
            "MAX_ROOT_FIELDS",
            "MAX_DIRECTIVES",
        ],
        used_by: "`serve gateway`",
        default: "`15000`, `15`, `5000`, `30`, `20`, `50`",
        meaning: "document limits, measured on the parsed document before validation and \
                  planning, fragments counted where they are spread without expanding them (see \
                  [Hostile operations](#hostile-operations)); over one: HTTP 400 with \
                  `extensions.code` `MAX_<LIMIT>_LIMIT`",
    },
    Var {
        file: &[
            key("limits.max_variable_values", Integer),
            key("limits.max_variable_depth", Integer),
        ],
        names: &["MAX_VARIABLE_VALUES", "MAX_VARIABLE_DEPTH"],
        used_by: "`serve gateway`",
        default: "`10000`, `16`",
        meaning: "values in a request's variables and their nesting; over: 400 \
                  `MAX_VARIABLES_LIMIT`",
    },
    Var {
        file: &[key("limits.plan_timeout", Duration)],
        names: &["PLAN_TIMEOUT"],
        used_by: "`serve gateway`",
        default: "`2s`",
        meaning: "planning deadline; past it 400 `PLAN_TIMEOUT`. Planning also stops when the \
                  client leaves or the request times out (30 s, 504). Bodies over 256 KiB get \
                  413 (1 MiB on a subgraph's own port)",
    },
    Var {
        file: &[
            key("serving.head_timeout", Duration),
            key("serving.idle_timeout", Duration),
        ],
        names: &["HEAD_TIMEOUT", "IDLE_TIMEOUT"],
        used_by: "gateway",
        default: "`10s`, `60s`",
        meaning: "a request's head must arrive within `HEAD_TIMEOUT` of the connection opening \
                  or the request's first byte (its body within as long again), or the \
                  connection is closed; a keep-alive connection may rest `IDLE_TIMEOUT` between \
                  requests (connections hyper serves, i.e. everything but `POST /graphql`, rest \
                  `HEAD_TIMEOUT`). Heads are at most 64 KiB and 100 headers (431 beyond)",
    },
    Var {
        file: &[key("limits.request_memory_budget", Integer)],
        names: &["REQUEST_MEMORY_BUDGET"],
        used_by: "`serve gateway`",
        default: "`33554432` (32 MiB)",
        meaning: "bytes of subgraph answers one request may hold; past it the remaining fetches \
                  fail with a `SUBGRAPH_ERROR`",
    },
    Var {
        file: &[
            key("subscriptions.per_connection", Integer),
            key("subscriptions.per_user", Integer),
        ],
        names: &["SUBSCRIPTIONS_PER_CONNECTION", "SUBSCRIPTIONS_PER_USER"],
        used_by: "`serve gateway`",
        default: "`100`, `200`",
        meaning: "subscriptions open at once on one WebSocket, and by one user on this gateway \
                  (all connections, WebSocket and SSE)",
    },
    Var {
        file: &[
            key("subscriptions.sse_reservations_per_client", Integer),
            key("subscriptions.sse_reservation_timeout", Duration),
        ],
        names: &["SSE_RESERVATIONS_PER_CLIENT", "SSE_RESERVATION_TIMEOUT"],
        used_by: "`serve gateway`",
        default: "`16`, `30s`",
        meaning: "GraphQL over SSE's single-connection mode: reservations (PUT `/graphql`) one \
                  client (the user its token names, else its address) may hold, open or not \
                  (429 beyond), and how long one may wait to be opened before it lapses; at most \
                  10 000 wait on one gateway (503 beyond)",
    },
    Var {
        file: &[key("subscriptions.buffer", Integer)],
        names: &["SUBSCRIPTION_BUFFER"],
        used_by: "`serve gateway`",
        default: "`64`",
        meaning: "messages waiting for a client before it counts as not reading (at least 1)",
    },
    Var {
        file: &[key("persisted.dir", Text)],
        names: &["PERSISTED_DIR"],
        used_by: "gateway",
        default: "`schema/persisted`",
        meaning: "trusted-document manifests, `<client>.json` each (reloaded on change)",
    },
    Var {
        file: &[key("persisted.only", Bool)],
        names: &["PERSISTED_ONLY"],
        used_by: "gateway",
        default: "`false`",
        meaning: "only manifest documents run, for every caller (also `--persisted-only`)",
    },
    Var {
        file: &[key("persisted.only_roles", List)],
        names: &["PERSISTED_ONLY_ROLES"],
        used_by: "gateway",
        default: "`PARTNER`",
        meaning: "roles whose tokens run only manifest documents (comma-separated; `off`: none)",
    },
    Var {
        file: &[key("usage.admin_roles", List)],
        names: &["USAGE_ADMIN_ROLES"],
        used_by: "gateway",
        default: "`ADMIN`",
        meaning: "roles whose tokens may ask `partnerUsage` and `setPartnerQuota` (comma-separated; `off`: none)",
    },
    Var {
        file: &[key("persisted.apq", Bool)],
        names: &["APQ"],
        used_by: "gateway",
        default: "`true`",
        meaning: "automatic persisted queries (kept in Redis with `REDIS_URL`)",
    },
    Var {
        file: &[key("entity_cache.enabled", Bool)],
        names: &["ENTITY_CACHE"],
        used_by: "gateway",
        default: "`off`",
        meaning: "`on`: keep the answers of entity fetches (`_entities`) as long as the \
                  subgraph's `Cache-Control` says (`max-age`; `private`: for that verified user \
                  only, never for an anonymous one), in Redis with `REDIS_URL`, else in memory; \
                  dropped early when a `stock.changed` or `product.updated` event names the \
                  product. Root fields are never cached",
    },
    Var {
        file: &[key("entity_cache.size", Integer)],
        names: &["ENTITY_CACHE_SIZE"],
        used_by: "gateway",
        default: "`10000`",
        meaning: "entities the entity cache keeps in memory (least recently used go first)",
    },
    Var {
        file: &[key("entity_cache.max_ttl", Duration)],
        names: &["ENTITY_CACHE_MAX_TTL"],
        used_by: "gateway",
        default: "`300s`",
        meaning: "the longest an entity-cache entry is kept, whatever a subgraph's `max-age` says",
    },
    Var {
        file: &[key("rate_limits.rules", List)],
        names: &["RATE_LIMITS"],
        used_by: "gateway",
        default: "see [Rate limits](#rate-limits)",
        meaning: "`off` or `user\\|ip.query\\|mutation\\|subscription\\|*=N/s[:burst],…`",
    },
    Var {
        file: &[key("rate_limits.ip_header", Text)],
        names: &["RATE_LIMIT_IP_HEADER"],
        used_by: "gateway",
        default: "none (the peer address)",
        meaning: "a proxy's client-address header, e.g. `x-forwarded-for`",
    },
    Var {
        file: &[key("subgraphs.*.url", Text)],
        names: &["SUBGRAPH_URLS"],
        used_by: "`serve gateway`",
        default: "the supergraph's URLs",
        meaning: "`name=url,…` where subgraphs really are (containers, clusters)",
    },
    Var {
        file: &[
            key("all_subgraphs.timeout", Duration),
            key("subgraphs.*.timeout", Duration),
        ],
        names: &["SUBGRAPH_TIMEOUT", "SUBGRAPH_TIMEOUTS"],
        used_by: "`serve gateway`",
        default: "`10s`, none",
        meaning: "how long a subgraph may take; `name=2s,name=500ms,…` for subgraphs that differ \
                  (a late subgraph gives partial data and a `SUBGRAPH_ERROR` naming the timeout, \
                  never a hung request)",
    },
    // How subgraphs are reached beyond their URLs (`subgraph::SubgraphOptions`).
    Var {
        file: &[key("subgraphs.*.tls.ca_file", Text)],
        names: &["SUBGRAPH_CA_FILES"],
        used_by: "`serve gateway`",
        default: "none: the system's root certificates",
        meaning: "`name=path,…`: PEM certificates of the CAs an `https://` subgraph's \
                  certificate may be issued by, trusted beside the system's roots (see \
                  [Subgraphs over TLS and HTTP/2](#subgraphs-over-tls-and-http2))",
    },
    Var {
        file: &[
            key("subgraphs.*.tls.client_cert", Text),
            key("subgraphs.*.tls.client_key", Text),
        ],
        names: &["SUBGRAPH_CLIENT_CERTS", "SUBGRAPH_CLIENT_KEYS"],
        used_by: "`serve gateway`",
        default: "none",
        meaning: "`name=path,…`: the PEM certificate chain, and its private key, the gateway \
                  presents to an `https://` subgraph that asks for one (mutual TLS); both or \
                  neither for a subgraph. Files are checked at start and read again on a \
                  supergraph reload",
    },
    Var {
        file: &[key("subgraphs.*.http2", Bool)],
        names: &["SUBGRAPH_HTTP2"],
        used_by: "`serve gateway`",
        default: "none",
        meaning: "`name,…`: subgraphs spoken to in HTTP/2 only: with prior knowledge (h2c) over \
                  `http://`, offering only `h2` over `https://`. Others: HTTP/1.1 over \
                  `http://`, HTTP/2 or HTTP/1.1 over `https://` as the subgraph picks (ALPN)",
    },
    Var {
        file: &[key("subgraphs.*.headers", Headers)],
        names: &["SUBGRAPH_HEADERS"],
        used_by: "`serve gateway`",
        default: "none",
        meaning: "`{\"name\": {\"x-api-key\": \"…\"}, …}` (JSON): request headers sent as they \
                  are on every fetch to a subgraph, besides the client's forwarded ones (not \
                  hop-by-hop headers, `host`, `content-*`, `accept` or a forwarded one)",
    },
    Var {
        file: &[key("auth.jwks_url", Text)],
        names: &["JWKS_URL"],
        used_by: "`serve gateway`",
        default: "none",
        meaning: "the users subgraph's JWKS (e.g. `http://users:4001/.well-known/jwks.json`) \
                  instead of a key file; fetched again when a token names an unknown key (at \
                  most every 30 s)",
    },
];
