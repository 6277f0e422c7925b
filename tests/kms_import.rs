//! Imported key material (BYOK) and data key pairs, through `kmstoken kms` as a user of
//! `aws kms` would drive them, every wrapping and every check done by the real openssl:
//! AWS's documented import procedure (RSAES-OAEP, and RSA-OAEP + AES key wrap with
//! padding), proof that the key holds the very material imported (openssl's ciphertext
//! decrypted by the module, openssl's HMAC equal to the token's), the import token's
//! rules, material expiry, deletion and re-import; data key pairs parsed, matched and
//! used by openssl.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use kms::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("base64 member")).expect("base64")
}

/// Runs openssl in `dir`; panics unless it succeeds. Returns its stdout.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed (Debian package openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

fn fileb(dir: &Path, name: &str) -> String {
    format!("fileb://{}", path(dir, name))
}

/// create-key --origin EXTERNAL; returns the key id.
fn external_key(cli: &Cli, spec: &str) -> String {
    let usage = if spec.starts_with("HMAC") { "GENERATE_VERIFY_MAC" } else { "ENCRYPT_DECRYPT" };
    let m = cli.ok(&["kms", "create-key", "--key-spec", spec, "--key-usage", usage, "--origin", "EXTERNAL"]);
    let m = &m["KeyMetadata"];
    assert_eq!(m["KeyState"], "PendingImport");
    assert_eq!(m["Origin"], "EXTERNAL");
    m["KeyId"].as_str().unwrap().to_string()
}

/// get-parameters-for-import, the public key written to `<prefix>wrapping.der` and the
/// token to `<prefix>token` in `dir`; returns the output.
fn parameters(cli: &Cli, dir: &Path, key: &str, alg: &str, spec: &str, prefix: &str) -> Value {
    let out = cli.ok(&[
        "kms",
        "get-parameters-for-import",
        "--key-id",
        key,
        "--wrapping-algorithm",
        alg,
        "--wrapping-key-spec",
        spec,
    ]);
    std::fs::write(dir.join(format!("{prefix}wrapping.der")), unb64(&out["PublicKey"])).unwrap();
    std::fs::write(dir.join(format!("{prefix}token")), unb64(&out["ImportToken"])).unwrap();
    out
}

/// RSAES-OAEP with SHA-256 (and MGF1-SHA-256) of file `input` under `<prefix>wrapping.der`.
fn oaep_sha256(dir: &Path, prefix: &str, input: &str, output: &str) {
    openssl(
        dir,
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            &format!("{prefix}wrapping.der"),
            "-keyform",
            "DER",
            "-in",
            input,
            "-out",
            output,
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
        ],
    );
}

/// RSA_AES_KEY_WRAP_SHA_256: a fresh AES-256 key under RSA-OAEP, then the material under
/// that key with AES key wrap with padding (RFC 5649), concatenated.
fn rsa_aes_wrap(dir: &Path, prefix: &str, input: &str, output: &str) {
    openssl(dir, &["rand", "-out", "aes.key", "32"]);
    let aes_hex = hex::encode(std::fs::read(dir.join("aes.key")).unwrap());
    oaep_sha256(dir, prefix, "aes.key", "aes.wrapped");
    openssl(
        dir,
        &["enc", "-id-aes256-wrap-pad", "-K", &aes_hex, "-iv", "A65959A6", "-in", input, "-out", "mat.wrapped"],
    );
    let mut out = std::fs::read(dir.join("aes.wrapped")).unwrap();
    out.extend(std::fs::read(dir.join("mat.wrapped")).unwrap());
    std::fs::write(dir.join(output), out).unwrap();
}

/// import-key-material of `<encrypted>` with `<prefix>token`; `extra` flags added.
fn import(cli: &Cli, dir: &Path, key: &str, prefix: &str, encrypted: &str, extra: &[&str]) -> Result<Value, AwsError> {
    let (material, token) = (fileb(dir, encrypted), fileb(dir, &format!("{prefix}token")));
    let mut args = vec![
        "kms",
        "import-key-material",
        "--key-id",
        key,
        "--encrypted-key-material",
        &material,
        "--import-token",
        &token,
    ];
    args.extend_from_slice(extra);
    cli.run(&args)
}

const FOREVER: &[&str] = &["--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE"];

fn encrypt(cli: &Cli, key: &str, plaintext: &[u8]) -> Result<Value, AwsError> {
    cli.run(&["kms", "encrypt", "--key-id", key, "--plaintext", &b64(plaintext)])
}

fn decrypt(cli: &Cli, blob: &Value) -> Result<Vec<u8>, AwsError> {
    cli.run(&["kms", "decrypt", "--ciphertext-blob", blob.as_str().unwrap()]).map(|v| unb64(&v["Plaintext"]))
}

#[test]
fn symmetric_material_imported_with_rsaes_oaep_sha_256() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let dir = s.dir().to_path_buf();
        let key = external_key(&cli, "SYMMETRIC_DEFAULT");
        // Not usable before its material comes.
        let e = cli.fails(&["kms", "encrypt", "--key-id", &key, "--plaintext", &b64(b"x")], "KMSInvalidStateException");
        assert!(e.stderr.contains("pending import"), "{}", e.stderr);

        let p = parameters(&cli, &dir, &key, "RSAES_OAEP_SHA_256", "RSA_4096", "");
        assert!(p["KeyId"].as_str().unwrap().ends_with(&format!(":key/{key}")), "{p}");
        assert_about(p["ParametersValidTo"].as_str().unwrap(), now(), DAY);
        let modulus = openssl(&dir, &["pkey", "-pubin", "-inform", "DER", "-in", "wrapping.der", "-noout", "-text"]);
        assert!(String::from_utf8_lossy(&modulus).contains("4096 bit"), "an RSA 4096 wrapping key");

        openssl(&dir, &["rand", "-out", "material", "32"]);
        oaep_sha256(&dir, "", "material", "encrypted");
        let out = import(&cli, &dir, &key, "", "encrypted", FOREVER).expect("import-key-material");
        assert!(out["KeyId"].as_str().unwrap().ends_with(&key), "{out}");
        let m = cli.describe(&key);
        assert_eq!(m["KeyState"], "Enabled");
        assert_eq!(m["ExpirationModel"], "KEY_MATERIAL_DOES_NOT_EXPIRE");
        assert!(m.get("ValidTo").is_none(), "{m}");

        let blob = encrypt(&cli, &key, b"imported and working").expect("encrypt")["CiphertextBlob"].clone();
        assert_eq!(decrypt(&cli, &blob).expect("decrypt"), b"imported and working");

        // The key holds the very material: openssl's AES-256-CBC ciphertext under it
        // decrypts through the PKCS#11 module.
        let material = std::fs::read(dir.join("material")).unwrap();
        let iv = [0x42u8; 16];
        std::fs::write(dir.join("plain"), b"made by openssl with the material").unwrap();
        let ct = openssl(
            &dir,
            &["enc", "-aes-256-cbc", "-K", &hex::encode(&material), "-iv", &hex::encode(iv), "-in", "plain"],
        );
        let handles = session.find_objects(&[Attribute::Id(uuid_bytes(&key))]).expect("C_FindObjects");
        assert_eq!(handles.len(), 1);
        let back = session.decrypt(&Mechanism::AesCbcPad(iv), handles[0], &ct).expect("C_Decrypt");
        assert_eq!(back, b"made by openssl with the material");

        for event in ["GetParametersForImport", "ImportKeyMaterial"] {
            let r = records_of(&s.keystore(), event, &key);
            assert_eq!(r.len(), 1, "{event}: {r:#?}");
            assert!(r[0].get("errorCode").is_none_or(Value::is_null), "{:#}", r[0]);
        }
    });
}

#[test]
fn hmac_material_imported_with_rsa_aes_key_wrap() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let dir = s.dir().to_path_buf();
        let key = external_key(&cli, "HMAC_256");
        parameters(&cli, &dir, &key, "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072", "");
        openssl(&dir, &["rand", "-out", "material", "48"]);
        rsa_aes_wrap(&dir, "", "material", "encrypted");
        import(&cli, &dir, &key, "", "encrypted", FOREVER).expect("import-key-material");
        assert_eq!(cli.key_state(&key), "Enabled");

        let msg = b"message authenticated by imported material";
        std::fs::write(dir.join("msg"), msg).unwrap();
        let hexkey = hex::encode(std::fs::read(dir.join("material")).unwrap());
        let expected = openssl(
            &dir,
            &["dgst", "-sha256", "-mac", "HMAC", "-macopt", &format!("hexkey:{hexkey}"), "-binary", "msg"],
        );
        let out = cli.ok(&[
            "kms",
            "generate-mac",
            "--key-id",
            &key,
            "--message",
            &b64(msg),
            "--mac-algorithm",
            "HMAC_SHA_256",
        ]);
        assert_eq!(unb64(&out["Mac"]), expected, "the token's HMAC is openssl's under the imported material");
    });
}

#[test]
fn import_tokens_are_bound_to_their_key_and_expire() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let dir = s.dir().to_path_buf();
        let a = external_key(&cli, "SYMMETRIC_DEFAULT");
        let b = external_key(&cli, "SYMMETRIC_DEFAULT");
        openssl(&dir, &["rand", "-out", "material", "32"]);
        parameters(&cli, &dir, &a, "RSAES_OAEP_SHA_256", "RSA_2048", "a-");
        parameters(&cli, &dir, &b, "RSAES_OAEP_SHA_256", "RSA_2048", "b-");
        oaep_sha256(&dir, "a-", "material", "for-a");
        oaep_sha256(&dir, "b-", "material", "for-b");

        // A day and an hour later the token has expired; the key still waits.
        let late = cli.later(25 * 3600);
        let e = import(&late, &dir, &a, "a-", "for-a", FOREVER).unwrap_err();
        assert_eq!((e.code.as_str(), e.operation.as_str()), ("ExpiredImportTokenException", "ImportKeyMaterial"));
        assert_eq!(late.key_state(&a), "PendingImport");

        // B's token on A, garbage, material wrapped for B's parameters: refused, nothing
        // changes.
        assert_eq!(import(&cli, &dir, &a, "b-", "for-a", FOREVER).unwrap_err().code, "InvalidImportTokenException");
        std::fs::write(dir.join("junk-token"), b"not an import token").unwrap();
        assert_eq!(import(&cli, &dir, &a, "junk-", "for-a", FOREVER).unwrap_err().code, "InvalidImportTokenException");
        assert_eq!(import(&cli, &dir, &a, "a-", "for-b", FOREVER).unwrap_err().code, "InvalidCiphertextException");
        // Material of the wrong length for the key spec.
        openssl(&dir, &["rand", "-out", "short", "16"]);
        oaep_sha256(&dir, "a-", "short", "short-for-a");
        assert_eq!(
            import(&cli, &dir, &a, "a-", "short-for-a", FOREVER).unwrap_err().code,
            "InvalidCiphertextException"
        );
        assert_eq!(cli.key_state(&a), "PendingImport");
        let failed = records_of(&s.keystore(), "ImportKeyMaterial", &a);
        assert_eq!(failed.len(), 5, "every refusal is audited");
        assert!(failed.iter().all(|r| r["errorCode"].is_string()), "{failed:#?}");

        // A new call supersedes the earlier parameters.
        std::fs::copy(dir.join("a-token"), dir.join("old-token")).unwrap();
        parameters(&cli, &dir, &a, "RSAES_OAEP_SHA_256", "RSA_2048", "a-");
        assert_eq!(import(&cli, &dir, &a, "old-", "for-a", FOREVER).unwrap_err().code, "InvalidImportTokenException");
        oaep_sha256(&dir, "a-", "material", "for-a");
        import(&cli, &dir, &a, "a-", "for-a", FOREVER).expect("import with the current parameters");
        assert_eq!(cli.key_state(&a), "Enabled");
        assert_eq!(cli.key_state(&b), "PendingImport");

        // Import serves EXTERNAL keys only; withdrawn and unknown algorithms are refused.
        let own = cli.ok(&["kms", "create-key"])["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
        let gpfi = |k: &str, alg: &str, code: &str| {
            let args = ["kms", "get-parameters-for-import", "--key-id", k, "--wrapping-algorithm", alg];
            cli.fails(&[&args[..], &["--wrapping-key-spec", "RSA_2048"]].concat(), code);
        };
        gpfi(&own, "RSAES_OAEP_SHA_256", "UnsupportedOperationException");
        gpfi(&b, "RSAES_PKCS1_V1_5", "ValidationException");
        cli.fails(&["kms", "delete-imported-key-material", "--key-id", &own], "UnsupportedOperationException");
    });
}

#[test]
fn material_expires_at_valid_to_and_comes_back() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let dir = s.dir().to_path_buf();
        let key = external_key(&cli, "SYMMETRIC_DEFAULT");
        openssl(&dir, &["rand", "-out", "material", "32"]);
        parameters(&cli, &dir, &key, "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", "");
        rsa_aes_wrap(&dir, "", "material", "encrypted");
        // ValidTo must be in the future.
        let past = (now() - 60).to_string();
        let e = import(&cli, &dir, &key, "", "encrypted", &["--valid-to", &past]).unwrap_err();
        assert_eq!(e.code, "ValidationException", "{}", e.stderr);
        let valid_to = now() + 3600;
        let iso = time_text(valid_to);
        import(&cli, &dir, &key, "", "encrypted", &["--expiration-model", "KEY_MATERIAL_EXPIRES", "--valid-to", &iso])
            .expect("import with an expiry");
        let m = cli.describe(&key);
        assert_eq!(
            (m["KeyState"].as_str(), m["ExpirationModel"].as_str()),
            (Some("Enabled"), Some("KEY_MATERIAL_EXPIRES"))
        );
        assert_eq!(m["ValidTo"], iso);
        let blob = encrypt(&cli, &key, b"before expiry").expect("encrypt")["CiphertextBlob"].clone();

        // Two hours on, the material is gone and the key waits for it again.
        let later = cli.later(2 * 3600);
        let m = later.describe(&key);
        assert_eq!(m["KeyState"], "PendingImport", "{m}");
        assert!(m.get("ValidTo").is_none(), "{m}");
        service_event(&s.keystore(), "DeleteExpiredKeyMaterial", &key);
        later.fails(&["kms", "encrypt", "--key-id", &key, "--plaintext", &b64(b"x")], "KMSInvalidStateException");
        later.fails(&["kms", "decrypt", "--ciphertext-blob", blob.as_str().unwrap()], "KMSInvalidStateException");

        // The same material, imported again, reads what was written before.
        parameters(&later, &dir, &key, "RSAES_OAEP_SHA_256", "RSA_2048", "");
        oaep_sha256(&dir, "", "material", "again");
        import(&later, &dir, &key, "", "again", FOREVER).expect("re-import");
        assert_eq!(decrypt(&later, &blob).expect("decrypt after re-import"), b"before expiry");
    });
}

/// `YYYY-MM-DDTHH:MM:SSZ` of seconds since the epoch.
fn time_text(secs: i64) -> String {
    let days = secs.div_euclid(DAY);
    let rem = secs.rem_euclid(DAY);
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[test]
fn deleted_material_takes_back_only_the_same_material() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let dir = s.dir().to_path_buf();
        let key = external_key(&cli, "SYMMETRIC_DEFAULT");
        openssl(&dir, &["rand", "-out", "material", "32"]);
        openssl(&dir, &["rand", "-out", "other", "32"]);
        parameters(&cli, &dir, &key, "RSAES_OAEP_SHA_256", "RSA_2048", "");
        oaep_sha256(&dir, "", "material", "encrypted");
        oaep_sha256(&dir, "", "other", "other-encrypted");
        import(&cli, &dir, &key, "", "encrypted", FOREVER).expect("first import");
        let blob = encrypt(&cli, &key, b"kept safe").expect("encrypt")["CiphertextBlob"].clone();
        // Other material into a key that has material: refused, whatever its state.
        let e = import(&cli, &dir, &key, "", "other-encrypted", FOREVER).unwrap_err();
        assert_eq!(e.code, "IncorrectKeyMaterialException", "{}", e.stderr);
        // The same material again (to change its expiry) is fine.
        import(&cli, &dir, &key, "", "encrypted", FOREVER).expect("same material again");

        let deleted = cli.ok(&["kms", "delete-imported-key-material", "--key-id", &key]);
        assert!(deleted["KeyId"].as_str().unwrap().ends_with(&key), "{deleted}");
        let m = cli.describe(&key);
        assert_eq!(m["KeyState"], "PendingImport");
        assert!(m.get("ExpirationModel").is_none(), "{m}");
        cli.fails(&["kms", "decrypt", "--ciphertext-blob", blob.as_str().unwrap()], "KMSInvalidStateException");
        // Deleting again changes nothing.
        cli.ok(&["kms", "delete-imported-key-material", "--key-id", &key]);

        let e = import(&cli, &dir, &key, "", "other-encrypted", FOREVER).unwrap_err();
        assert_eq!(e.code, "IncorrectKeyMaterialException", "{}", e.stderr);
        assert_eq!(cli.key_state(&key), "PendingImport");
        import(&cli, &dir, &key, "", "encrypted", FOREVER).expect("same material back");
        assert_eq!(decrypt(&cli, &blob).expect("decrypt"), b"kept safe");
        assert_eq!(records_of(&s.keystore(), "DeleteImportedKeyMaterial", &key).len(), 2);

        // Material deleted while the key's deletion is pending: cancelling brings the key
        // back waiting for its material, never Disabled (enable-key would then use nothing
        // anyone knows).
        cli.ok(&["kms", "schedule-key-deletion", "--key-id", &key, "--pending-window-in-days", "7"]);
        cli.ok(&["kms", "delete-imported-key-material", "--key-id", &key]);
        assert_eq!(cli.key_state(&key), "PendingDeletion");
        cli.ok(&["kms", "cancel-key-deletion", "--key-id", &key]);
        assert_eq!(cli.key_state(&key), "PendingImport");
        cli.fails(&["kms", "enable-key", "--key-id", &key], "KMSInvalidStateException");
    });
}

/// Whether openssl verifies a signature by `private.der` (PKCS#8) with `public.der`.
fn sign_and_verify(dir: &Path) {
    std::fs::write(dir.join("msg"), b"signed with a data key pair").unwrap();
    openssl(dir, &["dgst", "-sha256", "-keyform", "DER", "-sign", "private.der", "-out", "sig", "msg"]);
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-keyform", "DER", "-verify", "public.der", "-signature", "sig", "msg"])
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl verifies: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn data_key_pairs_work_in_openssl() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let dir = s.dir().to_path_buf();
        let key = cli.ok(&["kms", "create-key"])["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
        let ctx = "purpose=pairs";
        for spec in ["RSA_2048", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1"] {
            let out = cli.ok(&[
                "kms",
                "generate-data-key-pair",
                "--key-id",
                &key,
                "--key-pair-spec",
                spec,
                "--encryption-context",
                ctx,
            ]);
            assert_eq!(out["KeyPairSpec"], spec);
            assert!(out["KeyId"].as_str().unwrap().ends_with(&format!(":key/{key}")), "{out}");
            let private = unb64(&out["PrivateKeyPlaintext"]);
            std::fs::write(dir.join("private.der"), &private).unwrap();
            std::fs::write(dir.join("public.der"), unb64(&out["PublicKey"])).unwrap();
            // openssl reads both, and the public key is the private key's.
            openssl(&dir, &["pkey", "-inform", "DER", "-in", "private.der", "-noout"]);
            let derived =
                openssl(&dir, &["pkey", "-inform", "DER", "-in", "private.der", "-pubout", "-outform", "DER"]);
            assert_eq!(derived, unb64(&out["PublicKey"]), "{spec}: PublicKey is the private key's");
            sign_and_verify(&dir);
            // The blob opens to the same PKCS#8 with the same context, and not without it.
            let blob = out["PrivateKeyCiphertextBlob"].as_str().unwrap();
            let d = cli.ok(&["kms", "decrypt", "--ciphertext-blob", blob, "--encryption-context", ctx]);
            assert_eq!(unb64(&d["Plaintext"]), private, "{spec}");
            cli.fails(&["kms", "decrypt", "--ciphertext-blob", blob], "InvalidCiphertextException");
            cli.fails(
                &["kms", "decrypt", "--ciphertext-blob", blob, "--encryption-context", "purpose=other"],
                "InvalidCiphertextException",
            );
        }

        let out = cli.ok(&[
            "kms",
            "generate-data-key-pair-without-plaintext",
            "--key-id",
            &key,
            "--key-pair-spec",
            "ECC_NIST_P256",
        ]);
        assert!(out.get("PrivateKeyPlaintext").is_none(), "{out}");
        let d = cli.ok(&["kms", "decrypt", "--ciphertext-blob", out["PrivateKeyCiphertextBlob"].as_str().unwrap()]);
        std::fs::write(dir.join("private.der"), unb64(&d["Plaintext"])).unwrap();
        std::fs::write(dir.join("public.der"), unb64(&out["PublicKey"])).unwrap();
        sign_and_verify(&dir);

        let pair = |k: &str, spec: &str| {
            vec![
                "kms".to_string(),
                "generate-data-key-pair".into(),
                "--key-id".into(),
                k.to_string(),
                "--key-pair-spec".into(),
                spec.to_string(),
            ]
        };
        let run = |v: Vec<String>, code: &str| {
            let args: Vec<&str> = v.iter().map(String::as_str).collect();
            cli.fails(&args, code);
        };
        run(pair(&key, "SM2"), "UnsupportedOperationException");
        run(pair(&key, "RSA_1024"), "ValidationException");
        let signing = cli.ok(&["kms", "create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"]);
        run(pair(signing["KeyMetadata"]["KeyId"].as_str().unwrap(), "RSA_2048"), "UnsupportedOperationException");
    });
}
