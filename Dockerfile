# One image for every component: `docker run grocery <component>` runs
# `grocery serve <component>`. The supergraph, the trusted-document
# manifests and the REST route files it was built with ship beside the binary, under
# /usr/share/grocery/schema (deploy/k8s points the gateway at them).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin grocery

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 grocery \
 && mkdir /keys && chown grocery /keys
COPY --from=build /src/target/release/grocery /usr/local/bin/grocery
COPY schema/supergraph.graphql /usr/share/grocery/schema/supergraph.graphql
COPY schema/persisted /usr/share/grocery/schema/persisted
COPY schema/rest /usr/share/grocery/schema/rest
USER grocery
# Containers listen on every interface; the port comes from PORT.
ENV HOST=0.0.0.0
ENTRYPOINT ["grocery", "serve"]
CMD ["users"]
