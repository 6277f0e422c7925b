//! Asymmetric keys through OpenSC's `pkcs11-tool`, with `openssl` as the independent
//! oracle: key-pair generation (EC P-256 and P-384, RSA 2048), ECDSA, RSA PKCS#1 v1.5 and
//! PSS signatures verified by openssl with the public key taken out of the token, RSA
//! PKCS#1 v1.5 and OAEP (SHA-1 and SHA-256) decryption of openssl's ciphertexts, key
//! wrapping and unwrapping compared with openssl, ECDH equal to openssl's, and
//! `pkcs11-tool --test` on a token with keys.
//!
//! Every test drives the real tools against the built `libkmstoken.so`, each in a
//! keystore of its own (see `interop_common`). A missing `pkcs11-tool` or `openssl` is a
//! failure, not a skip: `scripts/deps.sh` installs them (Debian's `opensc` and `openssl`).
//!
//! A token key pair is a KMS key with one usage, taken from the template (see the
//! README): the pairs here are made with one of `--usage-sign`, `--usage-decrypt`,
//! `--usage-wrap` or `--usage-derive`, and a use outside it is refused with
//! CKR_KEY_FUNCTION_NOT_PERMITTED, which the tests check too.
//!
//! Written against OpenSC 0.23 (Debian 12), whose limits shape the tests:
//! - `--read-object --type pubkey` of an EC key fails with "cannot create EVP_PKEY" now
//!   and then, depending on the heap: pkcs11-tool frees the curve parameters it got from
//!   `EVP_PKEY_todata` before `EVP_PKEY_fromdata` reads them (valgrind: "Invalid read ...
//!   inside a block of size 256 free'd", freed by pkcs11-tool itself, allocated by
//!   OSSL_PARAM_dup). The PKCS#11 exchange is the same as with SoftHSM2's. The tests build
//!   the SubjectPublicKeyInfo from CKA_EC_PARAMS and CKA_EC_POINT instead; RSA public
//!   keys are read with `--read-object`.
//! - `--encrypt`, `--decrypt`, `--wrap` and `--unwrap` find keys by `--id` only; the key
//!   to wrap is named by `--application-id`, and `--unwrap` names the new key with
//!   `--application-id`/`--application-label`.
//! - `--wrap`/`--unwrap` with RSA-PKCS-OAEP pass no CK_RSA_PKCS_OAEP_PARAMS (the
//!   `--hash-algorithm`/`--mgf` options are ignored there), which the module refuses with
//!   CKR_MECHANISM_PARAM_INVALID as the specification asks; RSA key transport is tested
//!   with RSA-PKCS, OAEP through `--decrypt`.
//! - `--test` picks the keys for its sign and decrypt tests by CKA_SIGN and CKA_DECRYPT.
//!   kmstoken keeps the template's defaults (TRUE) for the functions that a key's one
//!   usage then refuses, so on a token with an RSA key pair `--test` stops at
//!   CKR_KEY_FUNCTION_NOT_PERMITTED (a sign key in its decrypt test, or the reverse). The
//!   self-test here runs with EC key pairs and secret keys, which it does not use that way.

mod interop_common;

use interop_common::*;

const TOKEN: &str = "asym";

fn fixture() -> Fixture {
    require_tool("pkcs11-tool", &["--help"], "opensc");
    require_tool("openssl", &["version"], "openssl");
    let f = Fixture::new();
    f.init_token(TOKEN);
    f
}

/// `pkcs11-tool --keypairgen`, checked in its report.
fn keypairgen(f: &Fixture, key_type: &str, id: &str, label: &str, usage: &str, expect: &str) {
    let out = f.p11_user(&["--keypairgen", "--key-type", key_type, "--id", id, "--label", label, usage]);
    assert!(out.contains("Key pair generated"), "{out}");
    assert!(out.contains(expect), "the new public key is not `{expect}`:\n{out}");
    let public = f.public_key(id);
    assert_eq!(public.label, label, "{public:?}");
}

/// Signs a file on the token; returns the signature's path.
fn sign(f: &Fixture, id: &str, mech: &str, input: &str, out: &str, extra: &[&str]) -> String {
    let out = f.p(out);
    let mut args = vec!["--sign", "--id", id, "-m", mech, "--input-file", input, "--output-file", &out];
    args.extend_from_slice(extra);
    f.p11_user(&args);
    out
}

/// The DigestInfo of PKCS#1 v1.5 for a SHA-256 hash.
fn sha256_digest_info(hash: &[u8]) -> Vec<u8> {
    [hex::decode("3031300d060960864801650304020105000420").unwrap(), hash.to_vec()].concat()
}

#[test]
fn der_helpers_match_known_encodings() {
    // The fixed P-256 prefix of an SPKI, as OpenSSL writes it.
    let params = hex::decode("06082a8648ce3d030107").unwrap();
    let point = [vec![0x04], vec![0x11; 64]].concat();
    let spki = ec_spki(&params, &[vec![0x04, 0x41], point.clone()].concat());
    assert_eq!(hex::encode(&spki[..26]), "3059301306072a8648ce3d020106082a8648ce3d030107034200");
    assert_eq!(&spki[26..], &point[..]);
    // Leading zeros go, a high bit gets a zero byte in front.
    let raw = [vec![0x00, 0x00, 0x7f], vec![0x80, 0x01, 0x02]].concat();
    assert_eq!(hex::encode(ecdsa_der(&raw)), "300902017f020400800102");
}

#[test]
fn ecdsa_p256_and_p384_signatures_verify_in_openssl() {
    let f = fixture();
    let curves = [
        ("EC:prime256v1", "e256", "ec-p256", "EC_POINT 256 bits", 64, "06082a8648ce3d030107"),
        ("EC:secp384r1", "e384", "ec-p384", "EC_POINT 384 bits", 96, "06052b81040022"),
    ];
    for (key_type, id, label, kind, sig_len, params) in curves {
        keypairgen(&f, key_type, id, label, "--usage-sign", kind);
        let public = f.public_key(id);
        assert_eq!(hex::encode(public.ec_params.as_deref().unwrap()), params, "CKA_EC_PARAMS names the curve");
        let spki = f.ec_public_der(id, &format!("{id}.der"));

        for (mech, md) in [("ECDSA-SHA256", "-sha256"), ("ECDSA-SHA384", "-sha384"), ("ECDSA-SHA512", "-sha512")] {
            for len in [0usize, 100, 5000] {
                let data = f.write(&format!("{id}-{len}.bin"), &pattern(len, len as u8));
                // The PKCS#11 form, r || s.
                let raw = sign(&f, id, mech, &data, &format!("{id}-{mech}-{len}.rs"), &[]);
                let raw = read(std::path::Path::new(&raw));
                assert_eq!(raw.len(), sig_len, "{mech} on {key_type}: r || s");
                let der = f.write(&format!("{id}-{mech}-{len}.der"), &ecdsa_der(&raw));
                assert!(
                    f.openssl_verifies(&["dgst", md, "-verify", &spki, "-keyform", "DER", "-signature", &der, &data]),
                    "openssl refuses {mech} on {key_type} of {len} bytes"
                );
                // Another message does not verify.
                let other = f.write("other.bin", &pattern(len + 1, 3));
                assert!(!f.openssl_verifies(&[
                    "dgst",
                    md,
                    "-verify",
                    &spki,
                    "-keyform",
                    "DER",
                    "-signature",
                    &der,
                    &other
                ]));
            }
        }

        // pkcs11-tool's own DER output, and the token's verification of its signature.
        let data = f.write("msg.bin", b"signed by the token");
        let der = sign(&f, id, "ECDSA-SHA256", &data, &format!("{id}.sig"), &["--signature-format", "openssl"]);
        assert!(f.openssl_verifies(&[
            "dgst",
            "-sha256",
            "-verify",
            &spki,
            "-keyform",
            "DER",
            "-signature",
            &der,
            &data
        ]));
        let raw = sign(&f, id, "ECDSA-SHA256", &data, &format!("{id}.rs"), &[]);
        let out = f.p11_user(&["--verify", "--id", id, "-m", "ECDSA-SHA256", "-i", &data, "--signature-file", &raw]);
        assert!(out.contains("Signature is valid"), "{out}");
        let mut bad = read(std::path::Path::new(&raw));
        bad[5] ^= 0x40;
        let bad = f.write("bad.rs", &bad);
        let r = f.p11_user_raw(&["--verify", "--id", id, "-m", "ECDSA-SHA256", "-i", &data, "--signature-file", &bad]);
        assert!(r.all().contains("Invalid signature") || r.all().contains("CKR_SIGNATURE_INVALID"), "{}", r.report());

        // Plain ECDSA signs the hash it is given.
        let hash = f.openssl(&["dgst", "-sha384", "-binary", &data]);
        let hash = f.write("hash.bin", &hash);
        let raw = sign(&f, id, "ECDSA", &hash, &format!("{id}-plain.rs"), &[]);
        let der = f.write(&format!("{id}-plain.der"), &ecdsa_der(&read(std::path::Path::new(&raw))));
        assert!(f.openssl_verifies(&[
            "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", &spki, "-in", &hash, "-sigfile", &der
        ]));

        // One usage: a signing key does not derive.
        let peer = f.p("peer.pem");
        let curve = if id == "e256" { "P-256" } else { "P-384" };
        f.openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", &format!("ec_paramgen_curve:{curve}"), "-out", &peer]);
        let peer_der = f.p("peer.der");
        f.openssl(&["pkey", "-in", &peer, "-pubout", "-outform", "DER", "-out", &peer_der]);
        let r = f.p11_user_raw(&[
            "--derive",
            "-m",
            "ECDH1-DERIVE",
            "--id",
            id,
            "--input-file",
            &peer_der,
            "--output-file",
            &f.p("no.bin"),
        ]);
        assert!(!r.ok() && r.all().contains("CKR_KEY_FUNCTION_NOT_PERMITTED"), "{}", r.report());
    }
}

#[test]
fn rsa_2048_pkcs1_and_pss_signatures_verify_in_openssl() {
    let f = fixture();
    keypairgen(&f, "rsa:2048", "5201", "rsa-sign", "--usage-sign", "RSA 2048 bits");
    let spki = f.rsa_public_der("5201", "rsa.der");
    let text =
        String::from_utf8(f.openssl(&["pkey", "-pubin", "-inform", "DER", "-in", &spki, "-noout", "-text"])).unwrap();
    assert!(text.contains("Public-Key: (2048 bit)") && text.contains("Exponent: 65537"), "{text}");

    for len in [0usize, 32, 3000] {
        let data = f.write(&format!("d{len}.bin"), &pattern(len, 7));
        for (mech, md) in
            [("SHA256-RSA-PKCS", "-sha256"), ("SHA384-RSA-PKCS", "-sha384"), ("SHA512-RSA-PKCS", "-sha512")]
        {
            let sig = sign(&f, "5201", mech, &data, &format!("{mech}-{len}.sig"), &[]);
            assert_eq!(read(std::path::Path::new(&sig)).len(), 256);
            assert!(
                f.openssl_verifies(&["dgst", md, "-verify", &spki, "-keyform", "DER", "-signature", &sig, &data]),
                "openssl refuses {mech} of {len} bytes"
            );
        }
        // PSS: the defaults of pkcs11-tool (MGF1 with the same hash, salt of the hash's
        // length), no salt, and another MGF1 hash with a 20-byte salt.
        let cases: [(&str, &str, &[&str], &str, &str); 3] = [
            ("SHA256-RSA-PKCS-PSS", "-sha256", &[], "sha256", "32"),
            ("SHA384-RSA-PKCS-PSS", "-sha384", &["--salt-len", "0"], "sha384", "0"),
            ("SHA256-RSA-PKCS-PSS", "-sha256", &["--mgf", "MGF1-SHA1", "--salt-len", "20"], "sha1", "20"),
        ];
        for (i, (mech, md, extra, mgf, salt)) in cases.into_iter().enumerate() {
            let sig = sign(&f, "5201", mech, &data, &format!("pss{i}-{len}.sig"), extra);
            let (mgf, salt) = (format!("rsa_mgf1_md:{mgf}"), format!("rsa_pss_saltlen:{salt}"));
            let verify = |file: &str| {
                f.openssl_verifies(&[
                    "dgst",
                    md,
                    "-verify",
                    &spki,
                    "-keyform",
                    "DER",
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    &mgf,
                    "-sigopt",
                    &salt,
                    "-signature",
                    &sig,
                    file,
                ])
            };
            assert!(verify(&data), "openssl refuses {mech} {extra:?} of {len} bytes");
            assert!(!verify(&f.write("other.bin", &pattern(len + 1, 1))), "{mech} verifies another message");
        }
    }

    // Plain RSA-PKCS-PSS signs a hash; plain RSA-PKCS signs a DigestInfo, and since
    // PKCS#1 v1.5 is deterministic it equals SHA256-RSA-PKCS over the same message.
    let data = f.write("m.bin", &pattern(1000, 42));
    let hash = f.openssl(&["dgst", "-sha256", "-binary", &data]);
    let hash_file = f.write("h.bin", &hash);
    let sig = sign(&f, "5201", "RSA-PKCS-PSS", &hash_file, "plain-pss.sig", &["--hash-algorithm", "SHA256"]);
    assert!(f.openssl_verifies(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        &spki,
        "-pkeyopt",
        "digest:sha256",
        "-pkeyopt",
        "rsa_padding_mode:pss",
        "-pkeyopt",
        "rsa_pss_saltlen:32",
        "-in",
        &hash_file,
        "-sigfile",
        &sig,
    ]));
    let info = f.write("info.bin", &sha256_digest_info(&hash));
    let plain = sign(&f, "5201", "RSA-PKCS", &info, "plain.sig", &[]);
    let hashed = sign(&f, "5201", "SHA256-RSA-PKCS", &data, "hashed.sig", &[]);
    assert_eq!(read(std::path::Path::new(&plain)), read(std::path::Path::new(&hashed)));
    let recovered =
        f.openssl(&["pkeyutl", "-verifyrecover", "-pubin", "-keyform", "DER", "-inkey", &spki, "-in", &plain]);
    assert_eq!(hex::encode(recovered), hex::encode(sha256_digest_info(&hash)));

    // The default profile serves what the key's attributes allow, as SoftHSM2: CKA_DECRYPT
    // defaults to TRUE beside the CKA_SIGN asked for, so the signing key also decrypts.
    let ct = f.p("ct.bin");
    f.openssl(&["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", &spki, "-in", &hash_file, "-out", &ct]);
    f.p11_user(&["--decrypt", "--id", "5201", "-m", "RSA-PKCS", "-i", &ct, "-o", &f.p("pt.bin")]);
    assert_eq!(f.read("pt.bin"), f.read("h.bin"));
}

#[test]
fn rsa_oaep_and_pkcs1_decrypt_openssl_ciphertexts() {
    let f = fixture();
    keypairgen(&f, "rsa:2048", "5202", "rsa-decrypt", "--usage-decrypt", "RSA 2048 bits");
    let spki = f.rsa_public_der("5202", "rsa.der");

    // (openssl digest, pkcs11-tool hash, MGF, longest message: 256 - 2 * hLen - 2)
    let oaep = [("sha1", "SHA-1", "MGF1-SHA1", 214usize), ("sha256", "SHA256", "MGF1-SHA256", 190)];
    for (md, hash, mgf, max) in oaep {
        for len in [1usize, 20, max] {
            let plain = f.write(&format!("p-{md}-{len}.bin"), &pattern(len, len as u8));
            let ct = f.p(&format!("c-{md}-{len}.bin"));
            f.openssl(&[
                "pkeyutl",
                "-encrypt",
                "-pubin",
                "-keyform",
                "DER",
                "-inkey",
                &spki,
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                &format!("rsa_oaep_md:{md}"),
                "-pkeyopt",
                &format!("rsa_mgf1_md:{md}"),
                "-in",
                &plain,
                "-out",
                &ct,
            ]);
            let back = f.p(&format!("b-{md}-{len}.bin"));
            f.p11_user(&[
                "--decrypt",
                "--id",
                "5202",
                "-m",
                "RSA-PKCS-OAEP",
                "--hash-algorithm",
                hash,
                "--mgf",
                mgf,
                "-i",
                &ct,
                "-o",
                &back,
            ]);
            assert_eq!(f.read(&format!("b-{md}-{len}.bin")), pattern(len, len as u8), "OAEP {md}, {len} bytes");
        }
    }
    // A SHA-256 ciphertext does not decrypt as SHA-1. (C_Decrypt answers
    // CKR_ENCRYPTED_DATA_INVALID; pkcs11-tool then tries C_DecryptUpdate, which RSA does
    // not have, and reports that error instead.)
    let wrong = f.p11_user_raw(&[
        "--decrypt",
        "--id",
        "5202",
        "-m",
        "RSA-PKCS-OAEP",
        "--hash-algorithm",
        "SHA-1",
        "--mgf",
        "MGF1-SHA1",
        "-i",
        &f.p("c-sha256-20.bin"),
        "-o",
        &f.p("wrong.bin"),
    ]);
    assert!(!wrong.ok(), "a SHA-256 OAEP ciphertext decrypted as SHA-1:\n{}", wrong.report());
    assert!(!f.path("wrong.bin").exists() || f.read("wrong.bin").is_empty(), "{}", wrong.report());

    // PKCS#1 v1.5, up to the longest message (256 - 11).
    for len in [1usize, 100, 245] {
        let plain = f.write(&format!("p1-{len}.bin"), &pattern(len, 9));
        let ct = f.p(&format!("c1-{len}.bin"));
        f.openssl(&["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", &spki, "-in", &plain, "-out", &ct]);
        let back = f.p(&format!("b1-{len}.bin"));
        f.p11_user(&["--decrypt", "--id", "5202", "-m", "RSA-PKCS", "-i", &ct, "-o", &back]);
        assert_eq!(f.read(&format!("b1-{len}.bin")), pattern(len, 9), "PKCS#1 v1.5, {len} bytes");
    }

    // The default profile serves what the key's attributes allow, as SoftHSM2: CKA_SIGN
    // defaults to TRUE beside the CKA_DECRYPT asked for, so the decryption key also signs.
    let sig = sign(&f, "5202", "SHA256-RSA-PKCS", &spki, "s.bin", &[]);
    f.openssl(&["dgst", "-sha256", "-verify", &spki, "-keyform", "DER", "-signature", &sig, &spki]);
}

/// Under `kms-strict` a key does only its one usage (AWS's rule): the capabilities of the
/// others read FALSE, and using them is CKR_KEY_FUNCTION_NOT_PERMITTED.
#[test]
fn kms_strict_keys_do_only_their_usage() {
    require_tool("pkcs11-tool", &["--help"], "opensc");
    require_tool("openssl", &["version"], "openssl");
    let f = Fixture::with_profile("kms-strict");
    f.init_token(TOKEN);
    keypairgen(&f, "rsa:2048", "5301", "rsa-decrypt", "--usage-decrypt", "RSA 2048 bits");
    keypairgen(&f, "EC:prime256v1", "5302", "ec-derive", "--usage-derive", "EC_POINT 256 bits");
    let data = f.write("data.bin", b"data");
    for (id, mech) in [("5301", "SHA256-RSA-PKCS"), ("5302", "ECDSA-SHA256")] {
        let r = f.p11_user_raw(&["--sign", "--id", id, "-m", mech, "-i", &data, "-o", &f.p("no.sig")]);
        assert!(!r.ok() && r.all().contains("CKR_KEY_FUNCTION_NOT_PERMITTED"), "{}", r.report());
    }
    // Two usages in one template are refused outright.
    let r =
        f.p11_user_raw(&["--keypairgen", "--key-type", "rsa:2048", "--id", "5303", "--usage-sign", "--usage-decrypt"]);
    assert!(!r.ok() && r.all().contains("CKR_TEMPLATE_INCONSISTENT"), "{}", r.report());
    // And RSA below 2048 bits is not made.
    let r = f.p11_user_raw(&["--keypairgen", "--key-type", "rsa:1024", "--id", "5304", "--usage-sign"]);
    assert!(!r.ok() && r.all().contains("CKR_KEY_SIZE_RANGE"), "{}", r.report());
}

#[test]
fn wrap_and_unwrap_match_openssl() {
    let f = fixture();
    let kek: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(13).wrapping_add(1)).collect();
    let target: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(29).wrapping_add(77)).collect();
    let (kek_file, target_file) = (f.write("kek.bin", &kek), f.write("target.bin", &target));
    f.p11_user(&[
        "--write-object",
        &kek_file,
        "--type",
        "secrkey",
        "--key-type",
        "AES:32",
        "--label",
        "kek",
        "--id",
        "4b01",
        "--usage-wrap",
    ]);
    f.p11_user(&[
        "--write-object",
        &target_file,
        "--type",
        "secrkey",
        "--key-type",
        "AES:32",
        "--label",
        "target",
        "--id",
        "4b02",
        "--extractable",
        "--usage-decrypt",
    ]);

    // AES key wrap (RFC 3394) on the token equals openssl's.
    let wrapped = f.p("wrapped.bin");
    let out = f.p11_user(&["--wrap", "-m", "AES-KEY-WRAP", "--id", "4b01", "--application-id", "4b02", "-o", &wrapped]);
    assert!(out.contains("Key wrapped"), "{out}");
    let theirs = f.openssl(&[
        "enc",
        "-id-aes256-wrap",
        "-K",
        &hex::encode(&kek),
        "-iv",
        "a6a6a6a6a6a6a6a6",
        "-in",
        &target_file,
    ]);
    assert_eq!(hex::encode(f.read("wrapped.bin")), hex::encode(&theirs), "AES-KEY-WRAP differs from openssl's");

    // A key wrapped by openssl unwraps on the token into a key that encrypts as the
    // original does.
    let fresh: Vec<u8> = (0..32u8).map(|i| i ^ 0x5a).collect();
    let fresh_file = f.write("fresh.bin", &fresh);
    let theirs_file = f.p("theirs.bin");
    f.openssl(&[
        "enc",
        "-id-aes256-wrap",
        "-K",
        &hex::encode(&kek),
        "-iv",
        "a6a6a6a6a6a6a6a6",
        "-in",
        &fresh_file,
        "-out",
        &theirs_file,
    ]);
    let out = f.p11_user(&[
        "--unwrap",
        "-m",
        "AES-KEY-WRAP",
        "--id",
        "4b01",
        "-i",
        &theirs_file,
        "--key-type",
        "AES:",
        "--application-id",
        "4b03",
        "--application-label",
        "unwrapped-aes",
    ]);
    assert!(out.contains("Key unwrapped") && out.contains("unwrapped-aes"), "{out}");
    assert_encrypts_as(&f, "4b03", &fresh);

    // RSA key transport: openssl encrypts a key to the token's public key, the token
    // unwraps it.
    keypairgen(&f, "rsa:2048", "5203", "rsa-wrap", "--usage-wrap", "RSA 2048 bits");
    let spki = f.rsa_public_der("5203", "rsa.der");
    let sent: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(3) ^ 0xa5).collect();
    let sent_file = f.write("sent.bin", &sent);
    let transported = f.p("transported.bin");
    f.openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        &spki,
        "-in",
        &sent_file,
        "-out",
        &transported,
    ]);
    let out = f.p11_user(&[
        "--unwrap",
        "-m",
        "RSA-PKCS",
        "--id",
        "5203",
        "-i",
        &transported,
        "--key-type",
        "AES:",
        "--application-id",
        "4b04",
        "--application-label",
        "transported-aes",
    ]);
    assert!(out.contains("Key unwrapped"), "{out}");
    assert_encrypts_as(&f, "4b04", &sent);

    // The other way: the token wraps the extractable key under an RSA public key whose
    // private half only openssl holds, and openssl recovers the key.
    let outside = f.p("outside.pem");
    f.openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &outside]);
    let outside_pub = f.p("outside-pub.pem");
    f.openssl(&["pkey", "-in", &outside, "-pubout", "-out", &outside_pub]);
    f.p11_user(&[
        "--write-object",
        &outside_pub,
        "--type",
        "pubkey",
        "--label",
        "outside",
        "--id",
        "5204",
        "--usage-wrap",
    ]);
    let to_outside = f.p("to-outside.bin");
    f.p11_user(&["--wrap", "-m", "RSA-PKCS", "--id", "5204", "--application-id", "4b02", "-o", &to_outside]);
    let recovered = f.openssl(&["pkeyutl", "-decrypt", "-inkey", &outside, "-in", &to_outside]);
    assert_eq!(hex::encode(recovered), hex::encode(&target), "openssl's RSA decryption of the token's wrap");
    // And the token's own private key unwraps what the token wrapped for it.
    let to_self = f.p("to-self.bin");
    f.p11_user(&["--wrap", "-m", "RSA-PKCS", "--id", "5203", "--application-id", "4b02", "-o", &to_self]);
    f.p11_user(&[
        "--unwrap",
        "-m",
        "RSA-PKCS",
        "--id",
        "5203",
        "-i",
        &to_self,
        "--key-type",
        "AES:",
        "--application-id",
        "4b05",
        "--application-label",
        "round-trip",
    ]);
    assert_encrypts_as(&f, "4b05", &target);

    // OpenSC 0.23 passes RSA-PKCS-OAEP without its parameters: refused, as it must be.
    let r =
        f.p11_user_raw(&["--wrap", "-m", "RSA-PKCS-OAEP", "--id", "5203", "--application-id", "4b02", "-o", &to_self]);
    assert!(!r.ok() && r.all().contains("CKR_MECHANISM_PARAM_INVALID"), "{}", r.report());

    // A sensitive, unextractable key does not leave the token.
    let r =
        f.p11_user_raw(&["--wrap", "-m", "AES-KEY-WRAP", "--id", "4b01", "--application-id", "4b03", "-o", &to_self]);
    assert!(!r.ok() && r.all().contains("CKR_KEY_UNEXTRACTABLE"), "{}", r.report());
}

/// The token key with this id is the AES-256 key `value`: its CBC encryption equals
/// openssl's.
fn assert_encrypts_as(f: &Fixture, id: &str, value: &[u8]) {
    let iv = "000102030405060708090a0b0c0d0e0f";
    let plain = f.write("cbc-plain.bin", &pattern(64, 17));
    let ct = f.p(&format!("cbc-{id}.bin"));
    f.p11_user(&["--encrypt", "-m", "AES-CBC", "--iv", iv, "--id", id, "-i", &plain, "-o", &ct]);
    let theirs = f.openssl(&["enc", "-aes-256-cbc", "-nopad", "-K", &hex::encode(value), "-iv", iv, "-in", &plain]);
    assert_eq!(hex::encode(f.read(&format!("cbc-{id}.bin"))), hex::encode(theirs), "key {id} is not the expected key");
}

#[test]
fn ecdh_derive_equals_openssl() {
    let f = fixture();
    for (key_type, curve, id, len) in [("EC:prime256v1", "P-256", "d256", 32), ("EC:secp384r1", "P-384", "d384", 48)] {
        let size = if len == 32 { "256" } else { "384" };
        keypairgen(&f, key_type, id, &format!("ecdh-{size}"), "--usage-derive", &format!("EC_POINT {size} bits"));
        let token_pub = f.ec_public_der(id, &format!("{id}.der"));

        let peer = f.p(&format!("peer-{id}.pem"));
        f.openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", &format!("ec_paramgen_curve:{curve}"), "-out", &peer]);
        let peer_pub = f.p(&format!("peer-{id}.der"));
        f.openssl(&["pkey", "-in", &peer, "-pubout", "-outform", "DER", "-out", &peer_pub]);

        let secret = f.p(&format!("secret-{id}.bin"));
        let out = f.p11_user(&[
            "--derive",
            "-m",
            "ECDH1-DERIVE",
            "--id",
            id,
            "--input-file",
            &peer_pub,
            "--output-file",
            &secret,
        ]);
        assert!(out.contains("ECDH1-DERIVE"), "{out}");
        let ours = f.read(&format!("secret-{id}.bin"));
        let theirs = f.openssl(&["pkeyutl", "-derive", "-inkey", &peer, "-peerkey", &token_pub, "-peerform", "DER"]);
        assert_eq!(ours.len(), len, "the ECDH secret of {curve} is the x coordinate");
        assert_eq!(hex::encode(&ours), hex::encode(&theirs), "ECDH on {curve} differs from openssl's");

        // The default profile serves what the key's attributes allow, as SoftHSM2: CKA_SIGN
        // defaults to TRUE beside the CKA_DERIVE asked for, so the key also signs.
        let sig =
            sign(&f, id, "ECDSA-SHA256", &peer_pub, &format!("ecdsa-{id}.sig"), &["--signature-format", "openssl"]);
        f.openssl(&["dgst", "-sha256", "-verify", &token_pub, "-keyform", "DER", "-signature", &sig, &peer_pub]);
    }
}

#[test]
fn self_test_passes_with_keys_present() {
    let f = fixture();
    keypairgen(&f, "EC:prime256v1", "01", "test-ec-sign", "--usage-sign", "EC_POINT 256 bits");
    keypairgen(&f, "EC:secp384r1", "02", "test-ec-derive", "--usage-derive", "EC_POINT 384 bits");
    f.p11_user(&["--keygen", "--key-type", "AES:32", "--label", "test-aes", "--id", "03"]);
    f.p11_user(&["--keygen", "--key-type", "GENERIC:32", "--label", "test-hmac", "--id", "04", "--usage-sign"]);
    let list = f.p11_user(&["--list-objects"]);
    for label in ["test-ec-sign", "test-ec-derive", "test-aes", "test-hmac"] {
        assert!(list.contains(label), "{label} is not listed:\n{list}");
    }

    let r = f.p11_raw(&["--slot", "0", "--test", "--login", "--pin", USER_PIN]);
    let out = r.all();
    assert!(r.ok(), "pkcs11-tool --test --login failed:\n{}", r.report());
    assert!(out.contains("No errors"), "pkcs11-tool --test did not report \"No errors\":\n{out}");
    assert!(out.contains("(test-ec-sign)"), "the self-test did not meet the keys:\n{out}");
}
