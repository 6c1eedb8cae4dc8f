#!/usr/bin/env bash
# The README's walk-through "capture EPCIS events, query them, follow a product", as the test
# suite runs it: every command of the README's block, in order, with checks between.
source "$(dirname "$0")/lib.sh"

veritrace up > up.out &                         # the platform, in the background
started $!
until grep -q 'admin API key' up.out; do sleep 0.2; done
KEY=$(sed -n 's/^  admin API key  //p' up.out)  # the key its banner printed

# 1. The grower, a trading partner: an organisation and its key.
curl -s -X POST http://127.0.0.1:8080/organisations \
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"name":"Orchard Co","role":"member"}' > grower.json
GROWER=$(sed 's/.*"api_key":"\([^"]*\)".*/\1/' grower.json)

# 2. Capture an EPCIS 2.0 document: a crate of apples commissioned, packed on a pallet, shipped.
cat > harvest.jsonld <<'EOF'
{"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
 "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-09-01T08:00:00Z",
 "epcisBody": {"eventList": [
  {"type": "ObjectEvent", "eventTime": "2026-09-01T07:00:00+02:00", "eventTimeZoneOffset": "+02:00",
   "action": "ADD", "bizStep": "commissioning", "disposition": "active",
   "epcList": ["urn:epc:id:sgtin:4012345.011111.1001"],
   "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"}},
  {"type": "AggregationEvent", "eventTime": "2026-09-01T09:00:00+02:00", "eventTimeZoneOffset": "+02:00",
   "action": "ADD", "bizStep": "packing", "parentID": "urn:epc:id:sscc:4012345.0000000001",
   "childEPCs": ["urn:epc:id:sgtin:4012345.011111.1001"]},
  {"type": "ObjectEvent", "eventTime": "2026-09-01T11:00:00+02:00", "eventTimeZoneOffset": "+02:00",
   "action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit",
   "epcList": ["urn:epc:id:sscc:4012345.0000000001"]}
 ]}}
EOF
curl -s -X POST http://127.0.0.1:8080/capture \
  -H "Authorization: Bearer $GROWER" -H 'Content-Type: application/ld+json' \
  --data-binary @harvest.jsonld | tee job.json
grep -q '"success":true' job.json

# 3. Query it back (EPCIS REST binding): the events naming the crate.
curl -s "http://127.0.0.1:8080/events?MATCH_anyEPC=urn:epc:id:sgtin:4012345.011111.1001" \
  -H "Authorization: Bearer $GROWER" > crate-events.json
grep -q '"commissioning"' crate-events.json

# 4. The crate's history: its own events, then its pallet's (shipped with it).
curl -s "http://127.0.0.1:8080/traceability?product=urn:epc:id:sgtin:4012345.011111.1001" \
  -H "Authorization: Bearer $GROWER" | tee history.json
grep -q '"relation":"aggregated_into"' history.json

# 5. Each event has a receipt of its own: fetch one and verify it offline.
RECEIPT=$(sed 's/.*"receiptUrls":{"[^"]*":"\([^"]*\)".*/\1/' job.json)
until curl -s "http://127.0.0.1:8080$RECEIPT" -H "Authorization: Bearer $GROWER" > receipt.json &&
      grep -q '"status":"anchored"' receipt.json; do sleep 0.2; done
veritrace verify receipt.json --genesis data/chain/genesis.json

# 6. Publish the crate's history: its page, for a shopper's phone (open the link in a browser).
curl -s -X PUT http://127.0.0.1:8080/products/04012345111118/publication \
  -H "Authorization: Bearer $GROWER" -H 'Content-Type: application/json' -d '{"published":true}'
curl -s -H 'Accept: text/html' http://127.0.0.1:8080/01/04012345111118/21/1001 > page.html
grep -c 'Anchored and verified' page.html       # each event's receipt, verified by the server
curl -s http://127.0.0.1:8080/01/04012345111118/21/1001  # for an API client: a linkset
curl -s http://127.0.0.1:8080/01/04012345111118/21/1001 | grep -q '"linkset"'
curl -s 'http://127.0.0.1:8080/01/04012345111118/21/1001?label=svg' > label.svg  # its QR code
grep -q 'data-check="event"' page.html
grep -q '<svg' label.svg

# The same document again: recognised, nothing stored twice.
curl -s -X POST http://127.0.0.1:8080/capture \
  -H "Authorization: Bearer $GROWER" -H 'Content-Type: application/ld+json' \
  --data-binary @harvest.jsonld > again.json
grep -q '"captured":\[\]' again.json
