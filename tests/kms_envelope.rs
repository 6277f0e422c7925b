//! Envelope encryption and the KMS ciphertext blob: the seed walkthrough run as a user
//! would, blobs made by the command line opened through CKM_KMSTOKEN_DECRYPT from C and
//! the reverse, encryption context binding, limits and rotation.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::raw::{raw, sh, Mech, Op};
use common::*;
use cryptoki_sys::CK_INVALID_HANDLE;
use kms::*;
use kmstoken::vendor::{CKM_KMSTOKEN_DECRYPT, CKM_KMSTOKEN_ENCRYPT};
use std::process::Command;

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}

#[test]
fn seed_walkthrough_runs_verbatim() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let dir = s.dir().join("walk");
        std::fs::create_dir_all(&dir).unwrap();
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_kmstoken")).parent().unwrap().to_path_buf();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/walkthrough.sh");
        let out = Command::new("bash")
            .arg(&script)
            .current_dir(&dir)
            .env("PATH", path)
            .env("KMSTOKEN_CONF", s.config_path())
            .env("KMSTOKEN_PIN", USER_PIN)
            .output()
            .expect("bash runs the walkthrough");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "walkthrough failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("walkthrough done") && stdout.contains("\"KeyState\": \"PendingDeletion\""),
            "{stdout}"
        );
        assert_eq!(std::fs::read(dir.join("decryptedSample.txt")).unwrap(), b"Sample data for envelope encryption\n");
    });
}

#[test]
fn blobs_cross_between_the_command_line_and_c() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        let r = raw();
        let h = sh(&session);
        let ctx = r#"{"purpose":"interop","team":"a"}"#;

        // Command line → C.
        let enc = cli.ok(&[
            "kms",
            "encrypt",
            "--key-id",
            &id,
            "--plaintext",
            &b64(b"from the cli"),
            "--encryption-context",
            "purpose=interop,team=a",
        ]);
        let blob = unb64(enc["CiphertextBlob"].as_str().unwrap());
        assert!(enc["KeyId"].as_str().unwrap().ends_with(&id));
        r.init(Op::Decrypt, h, &Mech::bytes(CKM_KMSTOKEN_DECRYPT, ctx.as_bytes()), CK_INVALID_HANDLE).unwrap();
        assert_eq!(r.crypt(false, h, &blob, Some(4096)).ok(), b"from the cli");
        // A wrong context fails the blob's check.
        r.init(Op::Decrypt, h, &Mech::bytes(CKM_KMSTOKEN_DECRYPT, br#"{"purpose":"other"}"#), CK_INVALID_HANDLE)
            .unwrap();
        let out = r.crypt(false, h, &blob, Some(4096));
        expect_rv(out.rv, cryptoki::error::RvError::EncryptedDataInvalid, cryptoki::context::Function::Decrypt);

        // C → command line, with the two-call length convention.
        r.init(Op::Encrypt, h, &Mech::bytes(CKM_KMSTOKEN_ENCRYPT, ctx.as_bytes()), key.handle()).unwrap();
        let blob = r.crypt(true, h, b"from C", Some(1024)).ok();
        let dec = cli.ok(&["kms", "decrypt", "--ciphertext-blob", &b64(&blob), "--encryption-context", ctx]);
        assert_eq!(unb64(dec["Plaintext"].as_str().unwrap()), b"from C");
        cli.fails(&["kms", "decrypt", "--ciphertext-blob", &b64(&blob)], "InvalidCiphertextException");

        // A named key that did not make the blob.
        let other = key_id_of(&session, generate_aes(&session));
        cli.fails(
            &["kms", "decrypt", "--ciphertext-blob", &b64(&blob), "--encryption-context", ctx, "--key-id", &other],
            "IncorrectKeyException",
        );
        // Re-encryption moves it under the other key without the plaintext leaving.
        let re = cli.ok(&[
            "kms",
            "re-encrypt",
            "--ciphertext-blob",
            &b64(&blob),
            "--source-encryption-context",
            ctx,
            "--destination-key-id",
            &other,
        ]);
        let moved = re["CiphertextBlob"].as_str().unwrap().to_string();
        let dec = cli.ok(&["kms", "decrypt", "--ciphertext-blob", &moved, "--key-id", &other]);
        assert_eq!(unb64(dec["Plaintext"].as_str().unwrap()), b"from C");
    });
}

#[test]
fn limits_malformed_blobs_and_rotation() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let id = key_id_of(&session, generate_aes(&session));
        let big = b64(&vec![7u8; 4097]);
        cli.fails(&["kms", "encrypt", "--key-id", &id, "--plaintext", &big], "ValidationException");
        let ok = cli.ok(&["kms", "encrypt", "--key-id", &id, "--plaintext", &b64(&vec![7u8; 4096])]);
        cli.fails(
            &["kms", "decrypt", "--ciphertext-blob", &b64(b"not a blob at all, not even close to one")],
            "InvalidCiphertextException",
        );
        let mut flipped = unb64(ok["CiphertextBlob"].as_str().unwrap());
        flipped[30] ^= 1;
        cli.fails(&["kms", "decrypt", "--ciphertext-blob", &b64(&flipped)], "InvalidCiphertextException");

        // Made before a rotation, opened after it: the blob names its material version.
        cli.ok(&["kms", "rotate-key-on-demand", "--key-id", &id]);
        let dec = cli.ok(&["kms", "decrypt", "--ciphertext-blob", ok["CiphertextBlob"].as_str().unwrap()]);
        assert_eq!(unb64(dec["Plaintext"].as_str().unwrap()), vec![7u8; 4096]);

        // Data keys: with and without plaintext, and their bounds.
        let dk = cli.ok(&["kms", "generate-data-key", "--key-id", &id, "--key-spec", "AES_128"]);
        assert_eq!(unb64(dk["Plaintext"].as_str().unwrap()).len(), 16);
        let back = cli.ok(&["kms", "decrypt", "--ciphertext-blob", dk["CiphertextBlob"].as_str().unwrap()]);
        assert_eq!(back["Plaintext"], dk["Plaintext"]);
        let np = cli.ok(&["kms", "generate-data-key-without-plaintext", "--key-id", &id, "--number-of-bytes", "64"]);
        assert!(np.get("Plaintext").is_none());
        cli.fails(&["kms", "generate-data-key", "--key-id", &id, "--number-of-bytes", "1025"], "ValidationException");
        cli.fails(&["kms", "generate-data-key", "--key-id", &id], "ValidationException");
        let random = cli.ok(&["kms", "generate-random", "--number-of-bytes", "32"]);
        assert_eq!(unb64(random["Plaintext"].as_str().unwrap()).len(), 32);

        // A key pending deletion cannot decrypt.
        cli.ok(&["kms", "schedule-key-deletion", "--key-id", &id, "--pending-window-in-days", "7"]);
        cli.fails(
            &["kms", "decrypt", "--ciphertext-blob", ok["CiphertextBlob"].as_str().unwrap()],
            "KMSInvalidStateException",
        );
    });
}
