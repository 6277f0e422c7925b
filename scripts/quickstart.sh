#!/usr/bin/env bash
# The main job on the embedded default: build the module, create a token in the default
# keystore (~/.local/share/kmstoken), generate an AES key on it through OpenSC's
# pkcs11-tool, show it, and round-trip a message through the token.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --quiet

module=target/release/libkmstoken.so
kmstoken=target/release/kmstoken
label=${KMSTOKEN_TOKEN:-quickstart}
so_pin=${KMSTOKEN_SO_PIN:-quickstart-so}
pin=${KMSTOKEN_PIN:-quickstart}
p11() { pkcs11-tool --module "$module" --token-label "$label" --login --pin "$pin" "$@"; }

if ! "$kmstoken" show-slots --output json | grep -q "\"Label\": \"$label\""; then
    echo "== kmstoken init-token: a new token in the empty slot"
    "$kmstoken" init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin"
fi
echo "== the slots, as pkcs11-tool sees them"
pkcs11-tool --module "$module" --list-slots

key="key-$(date +%Y%m%d-%H%M%S)"
echo "== pkcs11-tool --keygen: an AES-256 key named $key"
p11 --keygen --key-type AES:32 --label "$key"
echo "== the token's secret keys"
p11 --list-objects --type secrkey

echo "== encrypt and decrypt through the token (AES-CBC-PAD)"
iv=000102030405060708090a0b0c0d0e0f
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "hello from kmstoken" >"$tmp/plain"
p11 --encrypt --mechanism AES-CBC-PAD --iv "$iv" --label "$key" --input-file "$tmp/plain" --output-file "$tmp/cipher" 2>/dev/null
p11 --decrypt --mechanism AES-CBC-PAD --iv "$iv" --label "$key" --input-file "$tmp/cipher" --output-file "$tmp/back" 2>/dev/null
echo "ciphertext: $(od -An -tx1 "$tmp/cipher" | tr -d ' \n')"
echo "decrypted:  $(cat "$tmp/back")"
cmp -s "$tmp/plain" "$tmp/back" && echo "round trip OK"
