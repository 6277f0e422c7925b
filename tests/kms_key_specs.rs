//! The key specs of the AWS model beyond P-256/P-384 on the `kms` face: ECC_NIST_P521,
//! ECC_SECG_P256K1, ECC_NIST_EDWARDS25519 and ML_DSA_44/65/87 keys made by `create-key`,
//! their public keys read by openssl (or, for ML-DSA, RustCrypto's ml-dsa), their
//! signatures checked by openssl, ed25519-dalek or ml-dsa; and `derive-shared-secret`,
//! whose secret openssl derives too from the other side.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use ed25519_dalek::Verifier;
use kms::*;
use sha2::Digest;
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

/// Runs openssl in `dir`; its standard output.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is needed");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The SPKI `public` as openssl describes it (`openssl pkey -text`).
fn describe(dir: &Path, public: &[u8]) -> String {
    std::fs::write(dir.join("pub.der"), public).unwrap();
    openssl(dir, &["pkey", "-pubin", "-inform", "DER", "-in", "pub.der", "-text", "-noout"])
}

fn create(cli: &Cli, spec: &str, usage: &str) -> String {
    let m = cli.ok(&["kms", "create-key", "--key-spec", spec, "--key-usage", usage])["KeyMetadata"].clone();
    assert_eq!((m["KeySpec"].as_str(), m["KeyUsage"].as_str()), (Some(spec), Some(usage)));
    m["KeyId"].as_str().unwrap().to_string()
}

fn sign(cli: &Cli, id: &str, msg: &[u8], alg: &str, message_type: &str) -> Vec<u8> {
    let out = cli.ok(&[
        "kms",
        "sign",
        "--key-id",
        id,
        "--message",
        &b64(msg),
        "--signing-algorithm",
        alg,
        "--message-type",
        message_type,
    ]);
    assert_eq!(out["SigningAlgorithm"], alg);
    unb64(&out["Signature"])
}

fn kms_verifies(cli: &Cli, id: &str, msg: &[u8], sig: &[u8], alg: &str, message_type: &str) -> bool {
    let args = [
        "kms",
        "verify",
        "--key-id",
        id,
        "--message",
        &b64(msg),
        "--signature",
        &b64(sig),
        "--signing-algorithm",
        alg,
        "--message-type",
        message_type,
    ];
    match cli.run(&args) {
        Ok(v) => v["SignatureValid"] == true,
        Err(e) if e.code == "KMSInvalidSignatureException" => false,
        Err(e) => panic!("verify: {e:?}"),
    }
}

#[test]
fn p521_and_secp256k1_keys_sign_for_openssl() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let dir = s.dir().to_path_buf();
        let msg = b"a message for the new curves";
        for (spec, curve, alg, hash) in [
            ("ECC_NIST_P521", "NIST CURVE: P-521", "ECDSA_SHA_512", "sha512"),
            ("ECC_SECG_P256K1", "secp256k1", "ECDSA_SHA_256", "sha256"),
        ] {
            let id = create(&cli, spec, "SIGN_VERIFY");
            let key = cli.ok(&["kms", "get-public-key", "--key-id", &id]);
            assert_eq!(key["SigningAlgorithms"], serde_json::json!([alg]), "{key}");
            let public = unb64(&key["PublicKey"]);
            assert!(describe(&dir, &public).contains(curve), "{spec}");
            std::fs::write(dir.join("msg"), msg).unwrap();
            openssl(&dir, &["pkey", "-pubin", "-inform", "DER", "-in", "pub.der", "-out", "pub.pem"]);
            let digest =
                if hash == "sha512" { sha2::Sha512::digest(msg).to_vec() } else { sha2::Sha256::digest(msg).to_vec() };
            for (message_type, input) in [("RAW", msg.to_vec()), ("DIGEST", digest)] {
                let sig = sign(&cli, &id, &input, alg, message_type);
                std::fs::write(dir.join("sig"), &sig).unwrap();
                let out = Command::new("openssl")
                    .args(["dgst", &format!("-{hash}"), "-verify", "pub.pem", "-signature", "sig", "msg"])
                    .current_dir(&dir)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{spec} {message_type}: openssl verifies");
                assert!(kms_verifies(&cli, &id, &input, &sig, alg, message_type));
                assert!(!kms_verifies(&cli, &id, b"another message", &sig, alg, "RAW"));
            }
        }
        // secp256k1 signs only, as on AWS.
        cli.fails(
            &["kms", "create-key", "--key-spec", "ECC_SECG_P256K1", "--key-usage", "KEY_AGREEMENT"],
            "ValidationException",
        );
    });
}

#[test]
fn ed25519_keys_sign_pure_and_prehashed() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let dir = s.dir().to_path_buf();
        let id = create(&cli, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY");
        let key = cli.ok(&["kms", "get-public-key", "--key-id", &id]);
        assert_eq!(key["SigningAlgorithms"], serde_json::json!(["ED25519_SHA_512", "ED25519_PH_SHA_512"]));
        let public = unb64(&key["PublicKey"]);
        assert!(describe(&dir, &public).contains("ED25519"), "openssl reads an Ed25519 SPKI");
        // RFC 8410: the key is the last 32 bytes of the SPKI.
        let vk = ed25519_dalek::VerifyingKey::from_bytes(public[public.len() - 32..].try_into().unwrap()).unwrap();
        let msg = b"sign me with Ed25519";

        let pure = sign(&cli, &id, msg, "ED25519_SHA_512", "RAW");
        let sig = ed25519_dalek::Signature::from_slice(&pure).unwrap();
        vk.verify(msg, &sig).expect("dalek verifies Ed25519");
        std::fs::write(dir.join("msg"), msg).unwrap();
        std::fs::write(dir.join("sig"), &pure).unwrap();
        openssl(&dir, &["pkey", "-pubin", "-inform", "DER", "-in", "pub.der", "-out", "pub.pem"]);
        openssl(
            &dir,
            &["pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg", "-sigfile", "sig"],
        );
        assert!(kms_verifies(&cli, &id, msg, &pure, "ED25519_SHA_512", "RAW"));
        cli.fails(
            &[
                "kms",
                "sign",
                "--key-id",
                &id,
                "--message",
                &b64(&[0; 64]),
                "--signing-algorithm",
                "ED25519_SHA_512",
                "--message-type",
                "DIGEST",
            ],
            "ValidationException",
        );

        // Ed25519ph: the digest given (DIGEST) or made by the token (RAW) sign alike.
        let digest = sha2::Sha512::digest(msg);
        let ph = sign(&cli, &id, &digest, "ED25519_PH_SHA_512", "DIGEST");
        assert_eq!(sign(&cli, &id, msg, "ED25519_PH_SHA_512", "RAW"), ph, "Ed25519 is deterministic");
        let sig = ed25519_dalek::Signature::from_slice(&ph).unwrap();
        vk.verify_prehashed(sha2::Sha512::new_with_prefix(msg), None, &sig).expect("dalek verifies Ed25519ph");
        assert!(vk.verify(msg, &sig).is_err(), "Ed25519ph is not Ed25519");
        assert!(kms_verifies(&cli, &id, &digest, &ph, "ED25519_PH_SHA_512", "DIGEST"));
        assert!(!kms_verifies(&cli, &id, &digest, &pure, "ED25519_PH_SHA_512", "DIGEST"));
        cli.fails(
            &[
                "kms",
                "sign",
                "--key-id",
                &id,
                "--message",
                &b64(&[0; 32]),
                "--signing-algorithm",
                "ED25519_PH_SHA_512",
                "--message-type",
                "DIGEST",
            ],
            "ValidationException",
        );
        cli.fails(
            &["kms", "create-key", "--key-spec", "ECC_NIST_EDWARDS25519", "--key-usage", "KEY_AGREEMENT"],
            "ValidationException",
        );
    });
}

#[test]
fn derive_shared_secret_agrees_with_openssl() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let dir = s.dir().to_path_buf();
        let mut ids = Vec::new();
        for (spec, curve, len) in
            [("ECC_NIST_P256", "P-256", 32), ("ECC_NIST_P384", "P-384", 48), ("ECC_NIST_P521", "P-521", 66)]
        {
            let id = create(&cli, spec, "KEY_AGREEMENT");
            let key = cli.ok(&["kms", "get-public-key", "--key-id", &id]);
            assert_eq!(key["KeyAgreementAlgorithms"], serde_json::json!(["ECDH"]));
            std::fs::write(dir.join("ours.der"), unb64(&key["PublicKey"])).unwrap();
            openssl(
                &dir,
                &["genpkey", "-algorithm", "EC", "-pkeyopt", &format!("ec_paramgen_curve:{curve}"), "-out", "peer.pem"],
            );
            openssl(&dir, &["pkey", "-in", "peer.pem", "-pubout", "-outform", "DER", "-out", "peer.der"]);
            let peer = std::fs::read(dir.join("peer.der")).unwrap();
            let out = cli.ok(&[
                "kms",
                "derive-shared-secret",
                "--key-id",
                &id,
                "--key-agreement-algorithm",
                "ECDH",
                "--public-key",
                &b64(&peer),
            ]);
            assert_eq!(out["KeyAgreementAlgorithm"], "ECDH");
            assert_eq!(out["KeyOrigin"], "AWS_KMS");
            assert!(out["KeyId"].as_str().unwrap().ends_with(&id));
            let secret = unb64(&out["SharedSecret"]);
            assert_eq!(secret.len(), len, "{spec}");
            openssl(
                &dir,
                &["pkeyutl", "-derive", "-inkey", "peer.pem", "-peerkey", "ours.der", "-peerform", "DER", "-out", "z"],
            );
            assert_eq!(std::fs::read(dir.join("z")).unwrap(), secret, "{spec}: openssl derives the same secret");
            ids.push(id);
        }
        // A peer on another curve, garbage, another algorithm, a signing key.
        let peer = std::fs::read(dir.join("peer.der")).unwrap(); // P-521
        for (key, public, alg, code) in [
            (&ids[0], b64(&peer), "ECDH", "ValidationException"),
            (&ids[0], b64(b"not a key"), "ECDH", "ValidationException"),
            (&ids[2], b64(&peer), "SM2", "ValidationException"),
        ] {
            cli.fails(
                &[
                    "kms",
                    "derive-shared-secret",
                    "--key-id",
                    key,
                    "--key-agreement-algorithm",
                    alg,
                    "--public-key",
                    &public,
                ],
                code,
            );
        }
        let signer = create(&cli, "ECC_NIST_P521", "SIGN_VERIFY");
        cli.fails(
            &[
                "kms",
                "derive-shared-secret",
                "--key-id",
                &signer,
                "--key-agreement-algorithm",
                "ECDH",
                "--public-key",
                &b64(&peer),
            ],
            "InvalidKeyUsageException",
        );
        // Each use is audited under its AWS name.
        let audit = audit_records(&s.keystore());
        let derived =
            audit.iter().filter(|r| r["eventName"] == "DeriveSharedSecret" && r["errorCode"].is_null()).count();
        assert!(derived >= 3, "{derived} DeriveSharedSecret records");
    });
}

#[test]
fn ml_dsa_keys_sign_for_an_independent_verifier() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let msg = b"a post-quantum message";
        type Check = fn(&[u8], &[u8], &[u8]) -> bool;
        // The public key is the SPKI's last pk_len bytes.
        let sets: [(&str, &str, usize, Check); 3] = [
            ("ML_DSA_44", "2.16.840.1.101.3.4.3.17", 1312, ml_dsa_verifies::<ml_dsa::MlDsa44>),
            ("ML_DSA_65", "2.16.840.1.101.3.4.3.18", 1952, ml_dsa_verifies::<ml_dsa::MlDsa65>),
            ("ML_DSA_87", "2.16.840.1.101.3.4.3.19", 2592, ml_dsa_verifies::<ml_dsa::MlDsa87>),
        ];
        for (spec, oid, pk_len, check) in sets {
            let id = create(&cli, spec, "SIGN_VERIFY");
            let key = cli.ok(&["kms", "get-public-key", "--key-id", &id]);
            assert_eq!(key["SigningAlgorithms"], serde_json::json!(["ML_DSA_SHAKE_256"]), "{key}");
            let spki = unb64(&key["PublicKey"]);
            // SEQUENCE { SEQUENCE { OID }, BIT STRING { 0, pk } }: the OID's DER is in it.
            let oid = der_oid(oid);
            assert!(spki.windows(oid.len()).any(|w| w == oid.as_slice()), "{spec}: the SPKI names {oid:?}");
            assert_eq!(spki.len(), pk_len + 22, "{spec}: SPKI of a {pk_len}-byte key");
            let sig = sign(&cli, &id, msg, "ML_DSA_SHAKE_256", "RAW");
            let pk = &spki[spki.len() - pk_len..];
            assert!(check(pk, msg, &sig), "{spec}: ml-dsa verifies");
            assert!(!check(pk, b"another message", &sig), "{spec}: and not for another message");
            assert!(kms_verifies(&cli, &id, msg, &sig, "ML_DSA_SHAKE_256", "RAW"));
            assert!(!kms_verifies(&cli, &id, b"another message", &sig, "ML_DSA_SHAKE_256", "RAW"));
        }
        // EXTERNAL_MU: the caller's μ (64 bytes), checked by RustCrypto's verify_mu.
        let id = create(&cli, "ML_DSA_65", "SIGN_VERIFY");
        let spki = unb64(&cli.ok(&["kms", "get-public-key", "--key-id", &id])["PublicKey"]);
        let mu: [u8; 64] = std::array::from_fn(|i| i as u8 * 3);
        let sig = sign(&cli, &id, &mu, "ML_DSA_SHAKE_256", "EXTERNAL_MU");
        let pk = ml_dsa::EncodedVerifyingKey::<ml_dsa::MlDsa65>::try_from(&spki[spki.len() - 1952..]).unwrap();
        let vk = ml_dsa::VerifyingKey::<ml_dsa::MlDsa65>::decode(&pk);
        let decoded = ml_dsa::Signature::<ml_dsa::MlDsa65>::decode(&sig.as_slice().try_into().unwrap()).unwrap();
        assert!(vk.verify_mu(&mu.into(), &decoded), "ml-dsa verifies the signature of mu");
        assert!(kms_verifies(&cli, &id, &mu, &sig, "ML_DSA_SHAKE_256", "EXTERNAL_MU"));
        assert!(!kms_verifies(&cli, &id, &mu, &sig, "ML_DSA_SHAKE_256", "RAW"));
        for (message, message_type) in [(b64(&mu), "DIGEST"), (b64(&mu[1..]), "EXTERNAL_MU")] {
            cli.fails(
                &[
                    "kms",
                    "sign",
                    "--key-id",
                    &id,
                    "--message",
                    &message,
                    "--signing-algorithm",
                    "ML_DSA_SHAKE_256",
                    "--message-type",
                    message_type,
                ],
                "ValidationException",
            );
        }
        cli.fails(
            &["kms", "create-key", "--key-spec", "ML_DSA_44", "--key-usage", "ENCRYPT_DECRYPT"],
            "ValidationException",
        );
    });
}

/// The DER of an OBJECT IDENTIFIER (arcs below 2^14 past the first two).
fn der_oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u32> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &a in &arcs[2..] {
        if a >= 128 {
            body.push(0x80 | (a >> 7) as u8);
        }
        body.push((a & 0x7f) as u8);
    }
    [vec![0x06, body.len() as u8], body].concat()
}
