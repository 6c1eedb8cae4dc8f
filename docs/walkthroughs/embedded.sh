#!/usr/bin/env bash
# The README's walk-through "register evidence, fetch its receipt, verify it offline", as the
# test suite runs it: every command of the README's block, in order, with checks between.
source "$(dirname "$0")/lib.sh"

veritrace up > up.out &                         # the platform, in the background
started $!
until grep -q 'admin API key' up.out; do sleep 0.2; done
cat up.out
KEY=$(sed -n 's/^  admin API key  //p' up.out)  # the key its banner printed

echo "the signed delivery contract" > contract.txt
DIGEST=$(sha256sum contract.txt | cut -d' ' -f1)

# 1. Register the file's hash (the file never leaves your machine).
curl -s -X POST http://127.0.0.1:8080/evidence \
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d "{\"content_hash\":{\"algorithm\":\"sha-256\",\"digest\":\"$DIGEST\"},
       \"title\":\"Signed delivery contract\",\"case_reference\":\"2026-CV-0042\"}" | tee registration.json
EVENT=$(sed 's/.*"event_id":"\([^"]*\)".*/\1/' registration.json)

# 2. Fetch the receipt: "pending" for a moment, then "anchored" (within about 2 s).
until curl -s http://127.0.0.1:8080/receipts/$EVENT -H "Authorization: Bearer $KEY" > receipt.json &&
      grep -q '"status":"anchored"' receipt.json; do sleep 0.2; done

# 3. Verify it offline, against the genesis file alone, and check it attests this very file.
veritrace verify receipt.json --genesis data/chain/genesis.json --file contract.txt

# One byte of the file changed: status 1, and verify names what broke.
sed 's/^the/The/' contract.txt > changed.txt
expect 1 'content mismatch' veritrace verify receipt.json --genesis data/chain/genesis.json --file changed.txt
