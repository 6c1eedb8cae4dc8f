#!/usr/bin/env bash
# The README's walk-through "a 4-organisation network on one machine", as the test suite runs
# it: every command of the README's block, in order, with checks between.
source "$(dirname "$0")/lib.sh"

# 1. A genesis with 4 validators, and one directory per validator.
veritrace chain init --dir net --validators 4

# 2. The four validators (one per organisation; here all on this machine).
veritrace node --config net/validator-1/node.toml > validator-1.out &
started $!
veritrace node --config net/validator-2/node.toml > validator-2.out &
started $!
veritrace node --config net/validator-3/node.toml > validator-3.out &
started $!
veritrace node --config net/validator-4/node.toml > validator-4.out &
started $!

# 3. The platform, anchoring on the consortium instead of its embedded validator.
VERITRACE_CHAIN__NODES='["http://127.0.0.1:26701","http://127.0.0.1:26702","http://127.0.0.1:26703","http://127.0.0.1:26704"]' \
VERITRACE_CHAIN__GENESIS=net/genesis.json veritrace up --data-dir data-net > up.out &
started $!
until grep -q 'admin API key' up.out; do sleep 0.2; done
cat up.out validator-*.out
grep -q 'consortium chain through 4 validator node(s)' up.out
KEY=$(sed -n 's/^  admin API key  //p' up.out)

# Register evidence with that key exactly as in the walk-through above, fetch its receipt.
echo "the signed delivery contract" > contract.txt
DIGEST=$(sha256sum contract.txt | cut -d' ' -f1)
curl -s -X POST http://127.0.0.1:8080/evidence \
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d "{\"content_hash\":{\"algorithm\":\"sha-256\",\"digest\":\"$DIGEST\"},
       \"title\":\"Signed delivery contract\",\"case_reference\":\"2026-CV-0042\"}" | tee registration.json
EVENT=$(sed 's/.*"event_id":"\([^"]*\)".*/\1/' registration.json)
until curl -s http://127.0.0.1:8080/receipts/$EVENT -H "Authorization: Bearer $KEY" > receipt.json &&
      grep -q '"status":"anchored"' receipt.json; do sleep 0.2; done

# Verify it against the consortium's genesis: at least three of the four validators attest it.
veritrace verify receipt.json --genesis net/genesis.json --file contract.txt
expect 0 '[34] of 4 voting power' veritrace verify receipt.json --genesis net/genesis.json --file contract.txt
