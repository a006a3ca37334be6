#!/usr/bin/env bash
# Side-by-side backfill: @stripe/sync-engine and stripeline against the same
# emulated account (300 ms per request, 100 req/s global, 25 req/s per
# endpoint), each into its own schema of the local PostgreSQL.
#
#   bench/peers/run.sh [OBJECTS]       (default 10000)
#
# Env: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test),
#      PORT (emulator port, default 12199).
set -euo pipefail
cd "$(dirname "$0")"
OBJECTS=${1:-10000}
PORT=${PORT:-12199}
DB=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
ROOT=$(cd ../.. && pwd)
SPEC="$(cd "$ROOT" && go list -m -f '{{.Dir}}' github.com/stripe/stripe-mock)/embedded/openapi/spec3.json"
BIN=$(mktemp -d)/stripeline
(cd "$ROOT" && go build -o "$BIN" ./cmd/stripeline)
[ -d node_modules/@stripe/sync-engine ] || npm install --no-audit --no-fund >/dev/null

"$BIN" emulator --addr 127.0.0.1:$PORT --objects "$OBJECTS" --connected-accounts 0 \
  --latency 300ms --rps 100 --endpoint-rps 25 2>emulator.log &
EMU=$!
trap 'kill $EMU 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$PORT/_emulator/stats" >/dev/null && break; sleep 1; done

requests() { curl -s "http://127.0.0.1:$PORT/_emulator/stats" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(j.requests+" "+j.rate_limited)})'; }
count_rows() { # exact counts, the stats above lag
  psql "$DB" -Atc "SELECT string_agg(format('SELECT count(*) FROM %I.%I', schemaname, tablename), ' UNION ALL ') FROM pg_tables WHERE schemaname='$1' AND tablename NOT LIKE '\_%' AND tablename NOT IN ('accounts','migrations')" \
    | { read -r q; [ -n "$q" ] && psql "$DB" -Atc "SELECT sum(count) FROM ($q) t" || echo 0; }
}

psql "$DB" -qc "DROP SCHEMA IF EXISTS peer_sync_engine CASCADE; DROP SCHEMA IF EXISTS peer_stripeline CASCADE" 2>/dev/null

read -r r0 l0 < <(requests)
t0=$(date +%s.%N)
EMULATOR_PORT=$PORT DATABASE_URL=$DB SCHEMA=peer_sync_engine SPEC=$SPEC node sync-engine.mjs >sync-engine.out 2>sync-engine.log || { echo "sync-engine failed; see bench/peers/sync-engine.log"; tail -5 sync-engine.log; }
t1=$(date +%s.%N)
read -r r1 l1 < <(requests)
se_rows=$(count_rows peer_sync_engine)

STRIPE_API_KEY=sk_test_peerbench "$BIN" sync --api-base "http://127.0.0.1:$PORT" \
  --dest "$DB?schema=peer_stripeline" --max-rps 100 --endpoint-rps 25 --concurrency 40 \
  --streams customers,products,prices,coupons,promotion_codes,tax_rates,subscriptions,subscriptions_items,invoices,invoices_lines,invoiceitems,payment_intents,charges,refunds,balance_transactions,payouts,disputes,credit_notes,checkout_sessions,setup_intents,payment_methods,events \
  --format json >stripeline.out 2>stripeline.log
t2=$(date +%s.%N)
read -r r2 l2 < <(requests)
sl_rows=$(count_rows peer_stripeline)

printf '%-22s %10s %10s %8s %10s\n' tool seconds requests 429s rows
printf '%-22s %10.1f %10d %8d %10d\n' "@stripe/sync-engine" "$(echo "$t1 - $t0" | bc)" $((r1 - r0)) $((l1 - l0)) "$se_rows"
printf '%-22s %10.1f %10d %8d %10d\n' "stripeline" "$(echo "$t2 - $t1" | bc)" $((r2 - r1)) $((l2 - l1)) "$sl_rows"
echo "objects in the account: $(curl -s "http://127.0.0.1:$PORT/_emulator/counts" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);let n=0;for(const k in j)n+=j[k];console.log(n)})')"
echo "sync-engine totals: $(cat sync-engine.out)"
