#!/usr/bin/env bash
# grocery's gateway beside Hive Router on the public gateways benchmark's own
# fixture (github.com/graphql-hive/graphql-gateways-benchmark): its four
# async-graphql subgraphs, its supergraph and its query (an 87.6 KB answer),
# wrk with 50 connections, turns taken alternately so the machine's drift
# falls on both. Prints per turn and in sum: requests/s, p50/p99, the
# gateway's CPU per request, the subgraphs' CPU per client request and the
# gateway's peak RSS, and for grocery the shared executions (client requests
# per execution of the plan, from its fetch counters); then grocery's ratios
# to Hive Router. Both deduplicate identical client queries in flight, as the
# fixture's Hive Router configuration asks (`traffic_shaping.router.dedupe`;
# grocery: REQUEST_DEDUPLICATION=true). THREADS are wrk's: with two, grocery's
# requests share an execution per thread (about 25) when the threads fall out
# of step, and all 50 when they are in step; with one, always all 50.
#
#   PUBLIC_DIR   a checkout of the public repository with its subgraphs built
#                (`cargo build --release -p subgraphs` there)
#   HIVE_ROUTER  the hive_router binary (`cargo install hive-router
#                --version 0.0.71 --locked --features graphiql`)
#   GROCERY      grocery's binary (default target/release/grocery)
#   SECS TURNS CONNS THREADS   15, 3, 50, 2
#   GATEWAYS     which run, in turn order (default "hive grocery"; "grocery"
#                alone needs no HIVE_ROUTER and prints no ratios)
#
# Nothing of the public repository is kept in this tree: this script only runs it.
set -Eeuo pipefail
: "${PUBLIC_DIR:?set PUBLIC_DIR to a checkout of graphql-hive/graphql-gateways-benchmark}"
HIVE_ROUTER=${HIVE_ROUTER:-$(command -v hive_router || true)}
GROCERY=${GROCERY:-$(dirname "$0")/../../target/release/grocery}
SECS=${SECS:-15}; TURNS=${TURNS:-3}; CONNS=${CONNS:-50}; THREADS=${THREADS:-2}
read -r -a GATEWAYS <<< "${GATEWAYS:-hive grocery}"
SUBGRAPHS=$PUBLIC_DIR/target/release/subgraphs
needs=("$SUBGRAPHS" "$GROCERY")
[[ " ${GATEWAYS[*]} " == *" hive "* ]] && needs+=("$HIVE_ROUTER")
for need in "${needs[@]}"; do
  [[ -x $need ]] || { echo "missing executable: '$need' (see the head of $0)"; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
# The fixture's supergraph, its subgraphs on loopback.
sed 's#http://0.0.0.0:4200#http://127.0.0.1:4200#g' \
  "$PUBLIC_DIR/gateways/hive-router/supergraph.graphql" > "$WORK/supergraph.graphql"
# The query k6 posts, as wrk's body.
python3 - "$PUBLIC_DIR/k6.js" "$WORK" <<'PY'
import json, re, sys
query = re.search(r"query: `(.*?)`", open(sys.argv[1]).read(), re.S).group(1)
body = json.dumps({"query": query})
open(sys.argv[2] + "/body.json", "w").write(body)
open(sys.argv[2] + "/post.lua", "w").write(
    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[' + body + "]]\n")
PY
cat > "$WORK/router.config.yaml" <<YAML
supergraph:
  source: file
  path: $WORK/supergraph.graphql
http:
  host: 127.0.0.1
  port: 4000
log:
  level: warn
traffic_shaping:
  router:
    dedupe:
      enabled: true
YAML
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HOST=127.0.0.1 PORT=4200 "$SUBGRAPHS" > "$WORK/subgraphs.log" 2>&1 &
SUB=$!
start() {
  case $1 in
    hive) (cd "$WORK" && exec env -i RUST_LOG=warn "$HIVE_ROUTER") > "$WORK/hive.log" 2>&1 & ;;
    grocery) env -i PATH="$PATH" SUPERGRAPH_PATH="$WORK/supergraph.graphql" REST_DIR=off \
      RATE_LIMITS=off REQUEST_DEDUPLICATION=true METRICS_ADDR=127.0.0.1:4001 HOST=127.0.0.1 GATEWAY_PORT=4000 RUST_LOG=warn "$GROCERY" serve gateway > "$WORK/grocery.log" 2>&1 & ;;
  esac
  GW=$!
  for _ in $(seq 1 150); do
    [[ $(curl -s -o "$WORK/answer.json" -w '%{http_code}' -H 'content-type: application/json' \
      --data @"$WORK/body.json" http://127.0.0.1:4000/graphql 2>/dev/null) == 200 ]] && return 0
    sleep 0.2
  done
  echo "$1 did not answer:"; tail -5 "$WORK/$1.log"; exit 1
}
# grocery's executions so far: its fetches from the reviews subgraph, one
# per execution of the query's plan.
executions() {
  [[ $1 == grocery ]] || return 0
  { curl -s http://127.0.0.1:4001/metrics || true; } |
    awk '/^subgraph_fetch_duration_seconds_count\{subgraph="reviews"\}/ {print $2}'
}
declare -A REQS CPU_GW CPU_SUB SECS_SUM
for turn in $(seq 1 "$TURNS"); do
  for gw in "${GATEWAYS[@]}"; do
    start $gw
    wrk -t"$THREADS" -c"$CONNS" -d3s -s "$WORK/post.lua" http://127.0.0.1:4000/graphql > /dev/null
    g0=$(ticks $GW); s0=$(ticks $SUB); e0=$(executions $gw)
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/post.lua" http://127.0.0.1:4000/graphql)
    g1=$(ticks $GW); s1=$(ticks $SUB); e1=$(executions $gw)
    total=$(awk '/requests in/ {print $1}' <<< "$out")
    errors=$(awk '/Non-2xx|Socket errors/ {print}' <<< "$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
    p50=$(awk '$1 == "50%" {print $2}' <<< "$out"); p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
    rss=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$GW/status")
    gw_ms=$(echo "scale=4; ($g1 - $g0) * 1000 / $HZ / $total" | bc)
    sub_ms=$(echo "scale=4; ($s1 - $s0) * 1000 / $HZ / $total" | bc)
    shared=""
    if [[ -n $e1 && -n $e0 && $e1 != "$e0" ]]; then
      shared=" requests per execution $(echo "scale=1; $total / ($e1 - $e0)" | bc)"
    fi
    printf '%-8s turn %s: %8.0f req/s  p50 %-8s p99 %-8s gateway %.3f ms/req  subgraphs %.3f ms/req  peak RSS %s MB  answer %s bytes%s %s\n' \
      $gw "$turn" "$rps" "$p50" "$p99" "$gw_ms" "$sub_ms" "$rss" "$(wc -c < "$WORK/answer.json")" "$shared" "$errors"
    REQS[$gw]=$(( ${REQS[$gw]:-0} + total ))
    CPU_GW[$gw]=$(( ${CPU_GW[$gw]:-0} + g1 - g0 ))
    CPU_SUB[$gw]=$(( ${CPU_SUB[$gw]:-0} + s1 - s0 ))
    kill $GW; wait $GW 2>/dev/null || true
    sleep 1
  done
done
ratio() { echo "scale=3; ($1) / ($2)" | bc; }
[[ -n ${REQS[hive]:-} && -n ${REQS[grocery]:-} ]] || exit 0
echo "grocery / hive-router over all turns:" \
  "requests $(ratio "${REQS[grocery]}" "${REQS[hive]}")×," \
  "gateway CPU per request $(ratio "${CPU_GW[grocery]} * ${REQS[hive]}" "${CPU_GW[hive]} * ${REQS[grocery]}")×," \
  "subgraphs' CPU per request $(ratio "${CPU_SUB[grocery]} * ${REQS[hive]}" "${CPU_SUB[hive]} * ${REQS[grocery]}")×"
