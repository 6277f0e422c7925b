#!/usr/bin/env bash
# The AWS KMS "demo-lab-cmk" walkthrough of envelope encryption, verbatim but for
# `aws kms` → `kmstoken kms`. Run by tests/kms_envelope.rs in a scratch directory, with
# kmstoken on PATH and KMSTOKEN_CONF / KMSTOKEN_PIN pointing at a scratch token.
set -euo pipefail

kmstoken kms list-keys
KEYID=$(kmstoken kms create-key --description "demo lab key" --query KeyMetadata.KeyId --output text)
kmstoken kms create-alias --target-key-id "$KEYID" --alias-name alias/demo-lab-cmk

kmstoken kms generate-data-key --key-id alias/demo-lab-cmk --key-spec AES_256 --output json > datakey.json
python3 -c 'import json; print(json.load(open("datakey.json"))["Plaintext"])' | base64 --decode > datakeyPlainText.txt
python3 -c 'import json; print(json.load(open("datakey.json"))["CiphertextBlob"])' | base64 --decode > datakeyEncrypted.txt

# The data key is a raw AES-256 key: give it to openssl as one (-K), not as a password
# file, which openssl would cut at the first newline or NUL byte of the random key.
echo "Sample data for envelope encryption" > sampledata.txt
IV=$(openssl rand -hex 16)
openssl enc -e -aes-256-cbc -K "$(od -An -tx1 -v datakeyPlainText.txt | tr -d ' \n')" -iv "$IV" -in sampledata.txt -out encryptedSample.txt
rm datakeyPlainText.txt

kmstoken kms decrypt --ciphertext-blob fileb://datakeyEncrypted.txt --query Plaintext --output text | base64 --decode > datakeyPlainText.txt
openssl enc -d -aes-256-cbc -K "$(od -An -tx1 -v datakeyPlainText.txt | tr -d ' \n')" -iv "$IV" -in encryptedSample.txt -out decryptedSample.txt
cmp sampledata.txt decryptedSample.txt

kmstoken kms delete-alias --alias-name alias/demo-lab-cmk
kmstoken kms schedule-key-deletion --key-id "$KEYID" --pending-window-in-days 7 --output json
echo "walkthrough done"
