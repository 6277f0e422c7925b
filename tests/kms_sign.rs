//! `kmstoken kms sign | verify | get-public-key | generate-mac | verify-mac`: AWS's
//! algorithm names and encodings (DER ECDSA signatures, SPKI public keys), every
//! signature checked by openssl with the public key the command line exported.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use kms::*;
use std::path::Path;
use std::process::Command;

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("base64 member")).expect("base64")
}

/// `openssl dgst -verify` of `sig` over `msg` with the DER SPKI `public`.
fn openssl_verifies(dir: &Path, public: &[u8], msg: &[u8], sig: &[u8], hash: &str, pss: bool) -> bool {
    std::fs::write(dir.join("pub.der"), public).unwrap();
    std::fs::write(dir.join("msg"), msg).unwrap();
    std::fs::write(dir.join("sig"), sig).unwrap();
    let pem = Command::new("openssl")
        .args(["pkey", "-pubin", "-inform", "DER", "-in", "pub.der", "-out", "pub.pem"])
        .current_dir(dir)
        .status()
        .expect("openssl is needed (Debian package openssl)");
    assert!(pem.success(), "openssl reads the SPKI");
    let mut c = Command::new("openssl");
    c.args(["dgst", &format!("-{hash}"), "-verify", "pub.pem", "-signature", "sig"]).current_dir(dir);
    if pss {
        c.args(["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]);
    }
    c.arg("msg").output().expect("openssl runs").status.success()
}

#[test]
fn signatures_verify_outside_the_token() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let dir = s.dir().to_path_buf();
        let msg = b"message to sign";
        for (spec, algs) in [
            ("ECC_NIST_P256", vec![("ECDSA_SHA_256", "sha256", false)]),
            ("ECC_NIST_P384", vec![("ECDSA_SHA_384", "sha384", false)]),
            (
                "RSA_2048",
                vec![
                    ("RSASSA_PKCS1_V1_5_SHA_256", "sha256", false),
                    ("RSASSA_PSS_SHA_384", "sha384", true),
                    ("RSASSA_PKCS1_V1_5_SHA_512", "sha512", false),
                ],
            ),
        ] {
            let m =
                cli.ok(&["kms", "create-key", "--key-spec", spec, "--key-usage", "SIGN_VERIFY"])["KeyMetadata"].clone();
            assert_eq!(m["KeySpec"], spec);
            let id = m["KeyId"].as_str().unwrap().to_string();
            let public = unb64(&cli.ok(&["kms", "get-public-key", "--key-id", &id])["PublicKey"]);
            for (alg, hash, pss) in algs {
                let out = cli.ok(&["kms", "sign", "--key-id", &id, "--message", &b64(msg), "--signing-algorithm", alg]);
                let sig = unb64(&out["Signature"]);
                assert!(openssl_verifies(&dir, &public, msg, &sig, hash, pss), "{spec} {alg}");
                assert!(!openssl_verifies(&dir, &public, b"other message", &sig, hash, pss), "{spec} {alg} negative");
                let ok = cli.ok(&[
                    "kms",
                    "verify",
                    "--key-id",
                    &id,
                    "--message",
                    &b64(msg),
                    "--signature",
                    &b64(&sig),
                    "--signing-algorithm",
                    alg,
                ]);
                assert_eq!(ok["SignatureValid"], true);
                cli.fails(
                    &[
                        "kms",
                        "verify",
                        "--key-id",
                        &id,
                        "--message",
                        &b64(b"other"),
                        "--signature",
                        &b64(&sig),
                        "--signing-algorithm",
                        alg,
                    ],
                    "KMSInvalidSignatureException",
                );
            }
        }
    });
}

#[test]
fn digests_macs_and_wrong_usage() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let dir = s.dir().to_path_buf();
        let rsa = cli.ok(&["kms", "create-key", "--key-spec", "RSA_2048", "--key-usage", "SIGN_VERIFY"])["KeyMetadata"]
            ["KeyId"]
            .as_str()
            .unwrap()
            .to_string();
        // MessageType DIGEST: the token signs the digest it is given.
        let msg = b"digest me";
        let digest = Command::new("openssl")
            .args(["dgst", "-sha256", "-binary"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(msg)?;
                c.wait_with_output()
            })
            .expect("openssl")
            .stdout;
        let out = cli.ok(&[
            "kms",
            "sign",
            "--key-id",
            &rsa,
            "--message",
            &b64(&digest),
            "--message-type",
            "DIGEST",
            "--signing-algorithm",
            "RSASSA_PKCS1_V1_5_SHA_256",
        ]);
        let public = unb64(&cli.ok(&["kms", "get-public-key", "--key-id", &rsa])["PublicKey"]);
        assert!(openssl_verifies(&dir, &public, msg, &unb64(&out["Signature"]), "sha256", false));
        cli.fails(
            &[
                "kms",
                "sign",
                "--key-id",
                &rsa,
                "--message",
                &b64(b"short"),
                "--message-type",
                "DIGEST",
                "--signing-algorithm",
                "RSASSA_PKCS1_V1_5_SHA_256",
            ],
            "ValidationException",
        );

        // MACs.
        let mac_key = cli.ok(&["kms", "create-key", "--key-spec", "HMAC_256", "--key-usage", "GENERATE_VERIFY_MAC"])
            ["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_string();
        let mac = cli.ok(&[
            "kms",
            "generate-mac",
            "--key-id",
            &mac_key,
            "--message",
            &b64(msg),
            "--mac-algorithm",
            "HMAC_SHA_256",
        ]);
        let ok = cli.ok(&[
            "kms",
            "verify-mac",
            "--key-id",
            &mac_key,
            "--message",
            &b64(msg),
            "--mac",
            mac["Mac"].as_str().unwrap(),
            "--mac-algorithm",
            "HMAC_SHA_256",
        ]);
        assert_eq!(ok["MacValid"], true);
        cli.fails(
            &[
                "kms",
                "verify-mac",
                "--key-id",
                &mac_key,
                "--message",
                &b64(b"x"),
                "--mac",
                mac["Mac"].as_str().unwrap(),
                "--mac-algorithm",
                "HMAC_SHA_256",
            ],
            "KMSInvalidMacException",
        );

        // A key used outside its one usage, or of the wrong type.
        cli.fails(
            &["kms", "sign", "--key-id", &mac_key, "--message", &b64(msg), "--signing-algorithm", "ECDSA_SHA_256"],
            "InvalidKeyUsageException",
        );
        let enc = cli.ok(&["kms", "create-key", "--key-spec", "RSA_2048"])["KeyMetadata"].clone();
        assert_eq!(enc["KeyUsage"], "ENCRYPT_DECRYPT");
        cli.fails(
            &[
                "kms",
                "sign",
                "--key-id",
                enc["KeyId"].as_str().unwrap(),
                "--message",
                &b64(msg),
                "--signing-algorithm",
                "RSASSA_PSS_SHA_256",
            ],
            "InvalidKeyUsageException",
        );
        cli.ok(&["kms", "disable-key", "--key-id", &rsa]);
        cli.fails(
            &["kms", "sign", "--key-id", &rsa, "--message", &b64(msg), "--signing-algorithm", "RSASSA_PSS_SHA_256"],
            "DisabledException",
        );
        cli.fails(
            &["kms", "create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "ENCRYPT_DECRYPT"],
            "ValidationException",
        );
    });
}
