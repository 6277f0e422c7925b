#!/usr/bin/env bash
# Other projects' own test suites, run unmodified against the built module, each on a fresh
# token in a private keystore:
#   cryptoki     the `cryptoki` crate's integration tests (crates.io, pinned below)
#   python-pkcs11, pykcs11
#                the test suites in the PyPI source distributions of python-pkcs11 and
#                PyKCS11 (pinned below), run with pytest in a private venv
#   pkcs11-tool  OpenSC's `pkcs11-tool --test --login` on a token holding keys made by
#                `pkcs11-tool --keypairgen` (RSA, EC) and `--keygen` (AES, GENERIC)
# It fails on any failure that tests/conformance/expected-failures.txt does not list, and on
# a listed failure that no longer fails (the list stays exact). Each suite's skipped tests
# are printed with the suite's own reason.
#
# Usage: scripts/conformance.sh [MODULE] [SUITE...]
#   MODULE  default target/release/libkmstoken.so (built first when it is the default)
#   SUITE   any of cryptoki python-pkcs11 pykcs11 pkcs11-tool (default: all)
# Needs cargo, python3 (with venv), pkcs11-tool and network access to crates.io and PyPI;
# scripts/deps.sh installs the programs. Work files go to target/conformance/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

CRYPTOKI_VERSION=0.12.1
PYTHON_PKCS11_VERSION=0.10.1
PYKCS11_VERSION=1.5.20
# The suites' own test dependencies, pinned so that a new release cannot change a result.
PY_TEST_DEPS=(pytest==9.2.0 cryptography==50.0.2 parameterized==0.9.0 asn1crypto==1.5.1)

module="${1:-}"
[ $# -gt 0 ] && shift
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(cryptoki python-pkcs11 pykcs11 pkcs11-tool)
if [ -z "$module" ]; then
    cargo build --release --quiet --lib
    module="$ROOT/target/release/libkmstoken.so"
fi
[ -f "$module" ] || { echo "conformance: no module at $module" >&2; exit 2; }
module="$(cd "$(dirname "$module")" && pwd)/$(basename "$module")"
for tool in cargo python3 pkcs11-tool; do
    command -v "$tool" >/dev/null || { echo "conformance: $tool is missing (scripts/deps.sh installs it)" >&2; exit 2; }
done

WORK="$ROOT/target/conformance"
RUN="$WORK/run"
rm -rf "$RUN"
mkdir -p "$RUN"
EXPECTED="$ROOT/tests/conformance/expected-failures.txt"
RESULTS="$RUN/results.txt" # lines: OUTCOME SUITE TEST-ID
: > "$RESULTS"

log() { printf '== %s\n' "$*"; }

# fresh_token DIR LABEL SO_PIN USER_PIN: a keystore of its own under DIR, with one token
# made through the module itself (C_InitToken, C_InitPIN); exports KMSTOKEN_CONF.
fresh_token() {
    local dir="$1" label="$2" so="$3" user="$4"
    mkdir -p "$dir"
    printf "keystore = '%s'\n" "$dir/keystore" > "$dir/kmstoken.toml"
    export KMSTOKEN_CONF="$dir/kmstoken.toml"
    {
        pkcs11-tool --module "$module" --slot-index 0 --init-token --label "$label" --so-pin "$so" &&
            pkcs11-tool --module "$module" --token-label "$label" --init-pin --login --login-type so \
                --so-pin "$so" --pin "$user"
    } > "$dir/init.log" 2>&1 || { cat "$dir/init.log"; echo "conformance: token init failed" >&2; exit 2; }
}

# The Python suites share one venv; the sdists are fetched once for their tests.
python_env() {
    VENV="$WORK/venv"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    PY="$VENV/bin/python"
    "$PY" -m pip install -q --disable-pip-version-check "python-pkcs11==$PYTHON_PKCS11_VERSION" \
        "PyKCS11==$PYKCS11_VERSION" "${PY_TEST_DEPS[@]}"
    mkdir -p "$WORK/sdist"
    (cd "$WORK/sdist" &&
        { ls "python_pkcs11-$PYTHON_PKCS11_VERSION.tar.gz" >/dev/null 2>&1 ||
            "$PY" -m pip download -q --disable-pip-version-check --no-deps --no-binary python-pkcs11 \
                "python-pkcs11==$PYTHON_PKCS11_VERSION"; } &&
        { ls "pykcs11-$PYKCS11_VERSION.tar.gz" >/dev/null 2>&1 ||
            "$PY" -m pip download -q --disable-pip-version-check --no-deps --no-binary pykcs11 \
                "PyKCS11==$PYKCS11_VERSION"; })
}

# pytest_suite NAME DIR TESTDIR: runs pytest in DIR, records every test's outcome.
pytest_suite() {
    local name="$1" dir="$2" tests="$3" out="$RUN/$1.log"
    (cd "$dir" && "$PY" -m pytest -p no:cacheprovider -v -rs "$tests") > "$out" 2>&1 || true
    grep -E '^[^ ]+::[^ ]+ (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)' "$out" |
        sed -E "s/^([^ ]+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS).*/\2 $name \1/" |
        sed -E 's/^(ERROR|XPASS) /FAILED /; s/^XFAIL /SKIPPED /' >> "$RESULTS"
    grep -q -E '^=+ .* in [0-9.]+s' "$out" || { echo "FAILED $name (pytest did not finish: see $out)" >> "$RESULTS"; }
    grep -E '^SKIPPED \[' "$out" | sed "s/^/  $name: /" >> "$RUN/skips.txt" || true
}

run_cryptoki() {
    log "cryptoki $CRYPTOKI_VERSION's integration tests"
    local dir="$RUN/cryptoki"
    # The crate's source from the registry, through a throw-away crate that depends on it.
    local fetch="$WORK/cryptoki-fetch"
    mkdir -p "$fetch/src"
    printf '[package]\nname = "conformance-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ncryptoki = "=%s"\n' \
        "$CRYPTOKI_VERSION" > "$fetch/Cargo.toml"
    echo 'fn main() {}' > "$fetch/src/main.rs"
    (cd "$fetch" && cargo fetch -q)
    local src
    src="$(cd "$fetch" && cargo metadata --format-version 1 |
        python3 -c 'import json,sys; print([p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cryptoki"][0])')"
    mkdir -p "$dir"
    cp -r "$(dirname "$src")" "$dir/src"
    # Its tests take the first slot with a token and re-initialise it with these PINs.
    fresh_token "$dir/token" "Test Token" abcdef654321 fedcba123456
    # cryptoki's tests hold a module whose path does not say "softhsm" to what a PKCS#11 3.x
    # module has (KBKDF, SP800 ECDH, C_WaitForSlotEvent...): that is this token, so they run
    # as they would for any 3.x module, without TEST_PRETEND_LIBRARY.
    (cd "$dir/src" && CARGO_TARGET_DIR="$WORK/cryptoki-target" TEST_PKCS11_MODULE="$module" \
        cargo test --no-fail-fast --test '*' -- --test-threads=1) \
        > "$RUN/cryptoki.log" 2>&1 || true
    sed -n -E 's/^test (.*) \.\.\. (ok|FAILED|ignored)(,.*)?$/\2 cryptoki \1/p' "$RUN/cryptoki.log" |
        sed -E 's/^ok /PASSED /; s/^ignored /SKIPPED /' >> "$RESULTS"
    grep -q '^test result:' "$RUN/cryptoki.log" || echo "FAILED cryptoki (no test binary ran: see $RUN/cryptoki.log)" >> "$RESULTS"
    sed -n -E 's/^test (.*) \.\.\. ignored,? ?(.*)$/  cryptoki: \1 (#[ignore] in the crate: \2)/p' "$RUN/cryptoki.log" >> "$RUN/skips.txt"
}

run_python_pkcs11() {
    log "python-pkcs11 $PYTHON_PKCS11_VERSION's test suite"
    python_env
    local dir="$RUN/python-pkcs11"
    mkdir -p "$dir/suite"
    tar -xzf "$WORK/sdist/python_pkcs11-$PYTHON_PKCS11_VERSION.tar.gz" -C "$dir/suite" --strip-components=1 \
        "python_pkcs11-$PYTHON_PKCS11_VERSION/tests"
    fresh_token "$dir/token" TEST 5678 1234
    # Run from a directory holding only tests/, so that the installed package is imported.
    PKCS11_MODULE="$module" PKCS11_TOKEN_LABEL=TEST PKCS11_TOKEN_PIN=1234 PKCS11_TOKEN_SO_PIN=5678 \
        pytest_suite python-pkcs11 "$dir/suite" tests
}

run_pykcs11() {
    log "PyKCS11 $PYKCS11_VERSION's test suite"
    python_env
    local dir="$RUN/pykcs11"
    mkdir -p "$dir/suite"
    tar -xzf "$WORK/sdist/pykcs11-$PYKCS11_VERSION.tar.gz" -C "$dir/suite" --strip-components=1 \
        "pykcs11-$PYKCS11_VERSION/test"
    # Its tests hard-code these PINs and take the first slot with a token.
    fresh_token "$dir/token" "PyKCS11 token" 123456 1234
    PYKCS11LIB="$module" pytest_suite pykcs11 "$dir/suite" test
}

run_pkcs11_tool() {
    log "pkcs11-tool --test --login ($(pkcs11-tool --help 2>&1 | head -1 | grep -o 'OpenSC [^ ]*' || echo OpenSC))"
    local dir="$RUN/pkcs11-tool" pin=12345678
    fresh_token "$dir/token" conformance 87654321 "$pin"
    local tool=(pkcs11-tool --module "$module" --token-label conformance --login --pin "$pin")
    local made=0
    {
        "${tool[@]}" --keypairgen --key-type rsa:2048 --id 01 --label rsa-2048 &&
            "${tool[@]}" --keypairgen --key-type rsa:1024 --id 02 --label rsa-1024 &&
            "${tool[@]}" --keypairgen --key-type EC:prime256v1 --id 03 --label ec-p256 &&
            "${tool[@]}" --keygen --key-type AES:32 --id 04 --label aes-256 &&
            "${tool[@]}" --keygen --key-type GENERIC:32 --id 05 --label generic-256 &&
            made=1
    } > "$RUN/pkcs11-tool-keys.log" 2>&1 || true
    if [ "$made" = 1 ] && "${tool[@]}" --test > "$RUN/pkcs11-tool.log" 2>&1 &&
        grep -q '^No errors' "$RUN/pkcs11-tool.log"; then
        echo "PASSED pkcs11-tool --test" >> "$RESULTS"
    else
        echo "FAILED pkcs11-tool --test" >> "$RESULTS"
        tail -20 "$RUN/pkcs11-tool-keys.log" "$RUN/pkcs11-tool.log" 2>/dev/null | sed 's/^/    | /'
    fi
}

: > "$RUN/skips.txt"
for suite in "${suites[@]}"; do
    case "$suite" in
    cryptoki) run_cryptoki ;;
    python-pkcs11) run_python_pkcs11 ;;
    pykcs11) run_pykcs11 ;;
    pkcs11-tool) run_pkcs11_tool ;;
    *) echo "conformance: unknown suite $suite" >&2; exit 2 ;;
    esac
done

# The accepted failures: "SUITE TEST-ID | the client's own reason", of the suites that ran.
expected="$RUN/expected.txt"
{ grep -v -E '^\s*(#|$)' "$EXPECTED" || true; } | sed -E 's/\s*\|.*$//' | sort -u |
    while read -r s id; do
        for ran in "${suites[@]}"; do
            if [ "$ran" = "$s" ]; then echo "$s $id"; fi
        done
    done > "$expected"
failed="$RUN/failed.txt"
awk '$1 == "FAILED" { $1 = ""; sub(/^ /, ""); print }' "$RESULTS" | sort -u > "$failed"

status=0
echo
echo "== results"
for suite in "${suites[@]}"; do
    printf '  %-14s %4d passed, %3d failed, %3d skipped\n' "$suite" \
        "$(grep -c "^PASSED $suite " "$RESULTS" || true)" "$(grep -c "^FAILED $suite" "$RESULTS" || true)" \
        "$(grep -c "^SKIPPED $suite " "$RESULTS" || true)"
done
echo "  total          $(grep -c '^PASSED' "$RESULTS" || true) passed, $(grep -c '^FAILED' "$RESULTS" || true) failed, $(grep -c '^SKIPPED' "$RESULTS" || true) skipped"
if [ -s "$RUN/skips.txt" ]; then
    echo "== skipped, with each suite's own reason"
    sort "$RUN/skips.txt"
fi
accepted="$(comm -12 "$failed" "$expected")"
if [ -n "$accepted" ]; then
    echo "== failures accepted in tests/conformance/expected-failures.txt"
    while read -r line; do
        grep -F -- "$line |" "$EXPECTED" | head -1 | sed 's/^/  /'
    done <<<"$accepted"
fi
unexpected="$(comm -23 "$failed" "$expected")"
if [ -n "$unexpected" ]; then
    status=1
    echo "== UNEXPECTED FAILURES (logs in $RUN):"
    sed 's/^/  /' <<<"$unexpected"
fi
stale="$(comm -13 "$failed" "$expected")"
if [ -n "$stale" ]; then
    status=1
    echo "== listed as expected failures but did not fail (remove them from tests/conformance/expected-failures.txt):"
    sed 's/^/  /' <<<"$stale"
fi
[ "$status" = 0 ] && echo "conformance: OK"
exit "$status"
