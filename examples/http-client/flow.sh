#!/usr/bin/env bash
# The whole flow of the docaxis HTTP API with curl, as a document system in
# any language would do it: agency A sends a document with an attachment;
# agency B lists its inbox, downloads and checks the attachment, acknowledges
# the envelope (signed "delivered" receipt, edXML 01), then sets business
# statuses (accepted, processing, done); A follows the status.
#
# Needs curl and the usual shell tools (no jq). Environment:
#   DOCAXIS_URL  the server, e.g. http://127.0.0.1:8080
#   TOKEN_A      token of the sending agency   (docaxis agency token CODE_A)
#   TOKEN_B      token of the receiving agency (docaxis agency token CODE_B)
#   AGENCY_B     code of the receiving agency, e.g. 000.00.00.H41
#   FILE         a file to attach (default: a small text made here)
set -euo pipefail
: "${DOCAXIS_URL:?} ${TOKEN_A:?} ${TOKEN_B:?} ${AGENCY_B:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
if [ -z "${FILE:-}" ]; then FILE="$work/Công văn.txt"; printf 'Nội dung công văn gửi qua HTTP\n' > "$FILE"; fi

# field NAME: the first string value of NAME in the JSON on stdin.
field() { sed -n 's/.*"'"$1"'":"\([^"]*\)".*/\1/p' | head -1; }
# api TOKEN ARGS...: one call; prints the body; fails with the server's
# error message ({"error": ..., "code": ...}) on an HTTP error.
api() {
  local token=$1; shift
  local out status
  out=$(curl -sS -w '\n%{http_code}' -H "Authorization: Bearer $token" "$@")
  status=${out##*$'\n'}; out=${out%$'\n'*}
  if [ "$status" -ge 400 ]; then echo "HTTP $status: $out" >&2; return 1; fi
  printf '%s\n' "$out"
}

echo "1. A sends a document with $(basename "$FILE")"
meta=$(printf '{"to":["%s"],"subject":"Về việc thử nghiệm gửi văn bản qua HTTP","document":{"code_number":"7","code_notation":"VP-HTTP"}}' "$AGENCY_B")
id=$(api "$TOKEN_A" -F "meta=$meta;type=application/json" -F "file=@$FILE" "$DOCAXIS_URL/v1/envelopes" | field id)
[ -n "$id" ] || { echo "no envelope id" >&2; exit 1; }
echo "   envelope $id"

echo "2. B waits for it in its inbox"
for _ in $(seq 1 50); do
  inbox=$(api "$TOKEN_B" "$DOCAXIS_URL/v1/inbox")
  grep -q "\"id\":\"$id\"" <<<"$inbox" && break
  sleep 0.2
done
grep -q "\"id\":\"$id\"" <<<"$inbox" || { echo "envelope not in B's inbox" >&2; exit 1; }
grep -q '"verified":true' <<<"$inbox" || { echo "envelope not verified" >&2; exit 1; }
url=$(grep -o '"url":"[^"]*"' <<<"$inbox" | head -1 | field url)

echo "3. B downloads the attachment (checked against its SHA-256 on the way)"
curl -sSf -H "Authorization: Bearer $TOKEN_B" -o "$work/download" "$DOCAXIS_URL$url"
cmp -s "$FILE" "$work/download" || { echo "downloaded attachment differs" >&2; exit 1; }

echo "4. B acknowledges it: the sender gets the signed delivered receipt"
acked=$(api "$TOKEN_B" -X POST "$DOCAXIS_URL/v1/inbox/$id/ack" | field state)
echo "   $acked"

echo "5. B sets business statuses, by name and by edXML code"
for state in accepted 05 done; do
  set_state=$(api "$TOKEN_B" -X POST -H 'Content-Type: application/json' \
    -d "{\"state\":\"$state\",\"note\":\"Cập nhật qua HTTP: $state\"}" \
    "$DOCAXIS_URL/v1/envelopes/$id/status" | field state)
  echo "   $state -> $set_state"
done

echo "6. A reads the status of its document"
status=$(api "$TOKEN_A" "$DOCAXIS_URL/v1/envelopes/$id/status")
state=$(grep -o '"agency":"'"$AGENCY_B"'"[^{]*"state":"[^"]*"' <<<"$status" | sed 's/.*"state":"\([^"]*\)"/\1/')
echo "   $AGENCY_B: $state"
[ "$state" = done ] || { echo "want done" >&2; exit 1; }

echo "7. What is refused, with a JSON error"
code=$(curl -s -o "$work/err" -w '%{http_code}' "$DOCAXIS_URL/v1/envelopes/$id")
echo "   no token: HTTP $code $(cat "$work/err")"
[ "$code" = 401 ] || { echo "want 401 without a token" >&2; exit 1; }
if api "$TOKEN_B" -X POST -H 'Content-Type: application/json' -d '{"state":"accepted"}' "$DOCAXIS_URL/v1/envelopes/$id/status" 2>"$work/err"; then
  echo "a status after done was allowed" >&2; exit 1
fi
echo "   accepted after done: $(cat "$work/err")"
echo "OK $id"
