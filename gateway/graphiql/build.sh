#!/usr/bin/env bash
# Rebuilds gateway/graphiql/dist/, the GraphiQL the gateway embeds, from the
# exact npm versions in package-lock.json (node 20+ and npm; nothing else is
# downloaded). Commit dist/ afterwards: the gateway's tests check it against
# dist/manifest.json, which this writes.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
node build.mjs
