#!/usr/bin/env bash
# Fetches the AWS KMS service model that the aws CLI and the SDKs are generated from: the
# botocore wheel from PyPI carries it under botocore/data/kms/2014-11-01/. The command-line
# tests hold `kmstoken kms` (command and flag names, output members and types, enum values,
# error names) against it. The version is pinned so that a model change is a deliberate
# step. Writes target/kms-model/{service-2,paginators-1,examples-1}.json; does nothing when
# they are there.
set -euo pipefail

cd "$(dirname "$0")/.."
version=1.44.5
out=target/kms-model
if [ -s "$out/service-2.json" ] && [ "$(cat "$out/VERSION" 2>/dev/null)" = "$version" ]; then
    exit 0
fi
command -v python3 >/dev/null || { echo "kms-model.sh: python3 is needed to fetch the model" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "botocore==$version"
mkdir -p "$out"
python3 - "$tmp" "$out" <<'PY'
import glob, gzip, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(src + "/botocore-*.whl")[0])
names = set(wheel.namelist())
for name in ("service-2", "paginators-1", "examples-1"):
    path = "botocore/data/kms/2014-11-01/%s.json" % name
    # Some files ship gzipped, some not, and that changes between releases.
    data = gzip.decompress(wheel.read(path + ".gz")) if path + ".gz" in names else wheel.read(path)
    open("%s/%s.json" % (out, name), "wb").write(data)
PY
echo "$version" >"$out/VERSION"
echo "kms-model.sh: AWS KMS model from botocore $version in $out"
