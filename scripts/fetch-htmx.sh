#!/usr/bin/env bash
# Fetch the pinned htmx build from the npm registry package and verify it against the hash kept in the repo.
# Nothing third-party is committed: static/vendor/ is produced here and ignored by git.
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.0.1
want="Qp9rdC8H7EqOoX+nR0P3RPG2Noji+qdwJlGpfzwQJsfOpp3sGwIdSP9xO3+UlEhn"
out=static/vendor
js="$out/htmx-$version.min.js"
have() { [ -f "$js" ] && [ "$(openssl dgst -sha384 -binary "$js" | openssl base64 -A)" = "$want" ]; }
if have; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "htmx.org@$version" >/dev/null)
tar -xzf "$tmp"/htmx.org-"$version".tgz -C "$tmp"
mkdir -p "$out"
cp "$tmp/package/dist/htmx.min.js" "$js"
cp "$tmp/package/LICENSE" "$out/htmx-$version.LICENSE"
if ! have; then
  rm -f "$js"
  echo "htmx $version: sha384 mismatch, refusing to serve it" >&2
  exit 1
fi
echo "htmx $version fetched and verified (sha384-$want)"
