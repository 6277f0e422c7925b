#!/usr/bin/env bash
# Installs, through apt-get, the programs the build and the tests drive and that are
# missing: OpenSC's pkcs11-tool, openssl, SoftHSM2 (the reference token), the OpenSSL
# pkcs11 engine, a JDK (java, javac and keytool for the SunPKCS11 interop tests; OpenJDK
# 17 on Debian 12), gcc for the crypto engine's C code, and Python 3 with venv (the
# Python suites of scripts/conformance.sh); then the AWS KMS service model
# (scripts/kms-model.sh). Does nothing when all are there.
set -euo pipefail

cd "$(dirname "$0")/.."

need=()
command -v pkcs11-tool >/dev/null || need+=(opensc)
command -v openssl >/dev/null || need+=(openssl)
command -v softhsm2-util >/dev/null || need+=(softhsm2)
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
dpkg -s libengine-pkcs11-openssl >/dev/null 2>&1 || need+=(libengine-pkcs11-openssl)
{ command -v javac && command -v java && command -v keytool; } >/dev/null || need+=(default-jdk-headless)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)

if [ ${#need[@]} -eq 0 ]; then
    exec scripts/kms-model.sh
fi
echo "installing: ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root or sudo to install: ${need[*]}" >&2; exit 1; }
    sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends ca-certificates "${need[@]}"
exec scripts/kms-model.sh
