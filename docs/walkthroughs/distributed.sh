#!/usr/bin/env bash
# The README's walk-through of the distributed mode, as the test suite runs it: every command
# of the README's block, in order, with checks between. Needs the PostgreSQL server and the
# RabbitMQ broker the test command starts (`scripts/services start`), and PostgreSQL's client.
source "$(dirname "$0")/lib.sh"

# A database of its own on the server, and the broker.
SERVER=postgres://veritrace:veritrace@127.0.0.1:5432
dropdb --if-exists --force --maintenance-db=$SERVER/postgres veritrace_walkthrough
createdb --maintenance-db=$SERVER/postgres veritrace_walkthrough
export VERITRACE_DATABASE__URL=$SERVER/veritrace_walkthrough
export VERITRACE_AMQP__URL=amqp://guest:guest@127.0.0.1:5672/%2f
export VERITRACE_AMQP__NAMESPACE=walkthrough                 # its own exchange and queues

veritrace serve identity --bind 127.0.0.1:8081 > identity.out &   # prints the admin API key
started $!
veritrace serve anchor --bind 127.0.0.1:8083 --data-dir anchor-data > anchor.out &
started $!
until grep -q 'database' anchor.out; do sleep 0.2; done          # the anchor's chain is up
VERITRACE_CHAIN__GENESIS=anchor-data/chain/genesis.json VERITRACE_HTTP__RECEIPTS_URL=http://127.0.0.1:8083 \
veritrace serve evidence --bind 127.0.0.1:8082 > evidence.out &
started $!
VERITRACE_CHAIN__GENESIS=anchor-data/chain/genesis.json VERITRACE_HTTP__RECEIPTS_URL=http://127.0.0.1:8083 \
veritrace serve cases --bind 127.0.0.1:8084 > cases.out &
started $!
until curl -sf http://127.0.0.1:8082/readyz > /dev/null; do sleep 0.2; done
until curl -sf http://127.0.0.1:8084/readyz > /dev/null; do sleep 0.2; done
until grep -q 'admin API key' identity.out; do sleep 0.2; done
cat identity.out anchor.out evidence.out cases.out
KEY=$(sed -n 's/^  admin API key  //p' identity.out)

# 1. Register the file's hash with the evidence service.
echo "the signed delivery contract" > contract.txt
DIGEST=$(sha256sum contract.txt | cut -d' ' -f1)
curl -s -X POST http://127.0.0.1:8082/evidence \
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d "{\"content_hash\":{\"algorithm\":\"sha-256\",\"digest\":\"$DIGEST\"},
       \"title\":\"Signed delivery contract\",\"case_reference\":\"2026-CV-0042\"}" | tee registration.json
RECEIPT_URL=$(sed 's/.*"receipt_url":"\([^"]*\)".*/\1/' registration.json)   # on the anchor

# 2. Fetch the receipt where the answer says it is served.
until curl -s "$RECEIPT_URL" -H "Authorization: Bearer $KEY" > receipt.json &&
      grep -q '"status":"anchored"' receipt.json; do sleep 0.2; done

# 3. The court's case file: the cases service, reacting to the registration's event, filed it
#    as an exhibit of case 2026-CV-0042.
until curl -sf http://127.0.0.1:8084/cases/2026-CV-0042 -H "Authorization: Bearer $KEY" > case.json; do sleep 0.2; done
cat case.json
grep -q "\"content_hash\":{\"algorithm\":\"sha-256\",\"digest\":\"$DIGEST\"}" case.json

# 4. Verify it offline, and audit the stores against the chain (exit status 0: clean).
veritrace verify receipt.json --genesis anchor-data/chain/genesis.json --file contract.txt
veritrace audit --chain-node http://127.0.0.1:8083 --genesis anchor-data/chain/genesis.json
