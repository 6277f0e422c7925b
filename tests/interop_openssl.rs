//! OpenSSL 3 with libp11's `pkcs11` engine (Debian's `libengine-pkcs11-openssl`) using
//! token keys named by pkcs11: URIs: self-signed certificates made by `openssl req
//! -x509` with an EC and an RSA token key, `openssl dgst -sign` (ECDSA, PKCS#1 v1.5,
//! PSS) and `openssl pkeyutl -decrypt` (PKCS#1 v1.5, OAEP with SHA-1 and SHA-256).
//!
//! The engine is loaded from an openssl.cnf in the test's directory (OPENSSL_CONF, set
//! only on the commands that use the token) that names the engine's shared object (from
//! `openssl version -e`) and the module. Everything the token makes is checked by plain
//! openssl, without the engine, with the public key taken out of the token by
//! pkcs11-tool; the keys are made by pkcs11-tool (the engine cannot generate keys). A
//! missing `openssl`, `pkcs11-tool` or engine is a failure: `scripts/deps.sh` installs
//! Debian's `openssl`, `opensc` and `libengine-pkcs11-openssl`.
//!
//! Checked with libp11 0.4.12 and OpenSSL 3.0 (Debian 12): the engine loads, finds the
//! keys by URI (`pin-value` in the query logs in) and asks the token for CKM_ECDSA,
//! CKM_RSA_PKCS, CKM_RSA_PKCS_PSS (with its parameters) and CKM_RSA_PKCS_OAEP (with its
//! parameters), as pkcs11-spy shows.

mod interop_common;

use interop_common::*;
use std::path::PathBuf;
use std::process::Command;

const TOKEN: &str = "engine";

/// A token with an EC P-256 and an RSA 2048 signing key and an RSA 2048 decryption key,
/// and an openssl.cnf that loads the engine on this keystore's module.
struct EngineFixture {
    f: Fixture,
    cnf: PathBuf,
}

impl EngineFixture {
    fn new() -> EngineFixture {
        require_tool("openssl", &["version"], "openssl");
        require_tool("pkcs11-tool", &["--help"], "opensc");
        let engine = engine_path();
        let f = Fixture::new();
        f.init_token(TOKEN);
        let cnf = f.path("openssl.cnf");
        std::fs::write(
            &cnf,
            format!(
                "openssl_conf = openssl_init\n\
                 [openssl_init]\nengines = engine_section\n\
                 [engine_section]\npkcs11 = pkcs11_section\n\
                 [pkcs11_section]\nengine_id = pkcs11\ndynamic_path = {}\nMODULE_PATH = {}\ninit = 0\n\
                 [req]\ndistinguished_name = req_dn\n[req_dn]\n",
                engine.display(),
                f.module.display()
            ),
        )
        .expect("write openssl.cnf");
        for (key_type, id, label, usage) in [
            ("EC:prime256v1", "e1", "ec-key", "--usage-sign"),
            ("rsa:2048", "a1", "rsa-key", "--usage-sign"),
            ("rsa:2048", "a2", "rsa-decrypt", "--usage-decrypt"),
        ] {
            let out = f.p11_user(&["--keypairgen", "--key-type", key_type, "--id", id, "--label", label, usage]);
            assert!(out.contains("Key pair generated"), "{out}");
        }
        EngineFixture { f, cnf }
    }

    /// openssl with the engine loaded on this keystore.
    fn engine_raw(&self, args: &[&str]) -> Run {
        let mut c: Command = self.f.command("openssl");
        c.env("OPENSSL_CONF", &self.cnf).args(args);
        self.f.run(c)
    }

    fn engine(&self, args: &[&str]) -> Run {
        self.engine_raw(args).expect_ok()
    }
}

/// The pkcs11 engine's shared object: `pkcs11.so` in the directory `openssl version -e`
/// names.
fn engine_path() -> PathBuf {
    let o = Command::new("openssl").args(["version", "-e"]).output().expect("openssl version -e");
    let text = String::from_utf8_lossy(&o.stdout);
    let dir = text
        .split_once(':')
        .map(|(_, d)| d.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("unexpected `openssl version -e`: {text}"));
    let p = PathBuf::from(dir).join("pkcs11.so");
    assert!(
        p.is_file(),
        "{} not found: these tests need libp11's OpenSSL engine; install Debian's \
         `libengine-pkcs11-openssl` package (scripts/deps.sh does)",
        p.display()
    );
    p
}

/// The URI of a token private key, with the PIN that logs in.
fn private_uri(label: &str) -> String {
    format!("pkcs11:token={TOKEN};object={label};type=private?pin-value={USER_PIN}")
}

#[test]
fn req_makes_self_signed_certificates_with_token_keys() {
    let e = EngineFixture::new();
    let f = &e.f;
    let ec_pub = f.ec_public_der("e1", "ec-pub.der");
    let rsa_pub = f.rsa_public_der("a1", "rsa-pub.der");
    for (label, public, sig_alg) in
        [("ec-key", &ec_pub, "ecdsa-with-SHA256"), ("rsa-key", &rsa_pub, "sha256WithRSAEncryption")]
    {
        let cert = f.p(&format!("{label}.pem"));
        e.engine(&[
            "req",
            "-new",
            "-x509",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-key",
            &private_uri(label),
            "-sha256",
            "-days",
            "2",
            "-subj",
            &format!("/CN={label}"),
            "-out",
            &cert,
        ]);
        // Plain openssl checks the token's signature on the certificate. (`openssl verify`
        // takes a trust anchor's own signature on trust unless told -check_ss_sig.)
        let out = String::from_utf8(f.openssl(&["verify", "-check_ss_sig", "-CAfile", &cert, &cert])).unwrap();
        assert_eq!(out.trim(), format!("{cert}: OK"));
        let text = String::from_utf8(f.openssl(&["x509", "-in", &cert, "-noout", "-text"])).unwrap();
        assert!(text.contains(&format!("Signature Algorithm: {sig_alg}")), "{text}");
        assert!(text.contains(&format!("Subject: CN = {label}")), "{text}");
        // The certificate holds the token's public key.
        let cert_pub = f.openssl(&["x509", "-in", &cert, "-noout", "-pubkey"]);
        let cert_pub = f.write(&format!("{label}-cert-pub.pem"), &cert_pub);
        let cert_pub_der = f.openssl(&["pkey", "-pubin", "-in", &cert_pub, "-outform", "DER"]);
        assert_eq!(hex::encode(cert_pub_der), hex::encode(read(std::path::Path::new(public))), "{label}");
        // A changed certificate no longer verifies.
        let mut der = f.openssl(&["x509", "-in", &cert, "-outform", "DER"]);
        let n = der.len();
        der[n - 5] ^= 0x01; // inside the signature
        let bad = f.write(&format!("{label}-bad.der"), &der);
        let bad_pem = f.p(&format!("{label}-bad.pem"));
        f.openssl(&["x509", "-inform", "DER", "-in", &bad, "-out", &bad_pem]);
        let r = f.openssl_raw(&["verify", "-check_ss_sig", "-CAfile", &bad_pem, &bad_pem]);
        assert!(!r.ok() && r.all().contains("certificate signature failure"), "{}", r.report());
    }
}

#[test]
fn dgst_signatures_verify_outside_the_token() {
    let e = EngineFixture::new();
    let f = &e.f;
    let ec_pub = f.ec_public_der("e1", "ec-pub.der");
    let rsa_pub = f.rsa_public_der("a1", "rsa-pub.der");
    let pss = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha256"];
    let cases: [(&str, &str, &str, &[&str]); 4] = [
        ("ec-key", "-sha256", &ec_pub, &[]),
        ("ec-key", "-sha384", &ec_pub, &[]),
        ("rsa-key", "-sha256", &rsa_pub, &[]),
        ("rsa-key", "-sha256", &rsa_pub, &pss),
    ];
    for (i, (label, md, public, opts)) in cases.into_iter().enumerate() {
        for len in [0usize, 64, 10_000] {
            let data = f.write(&format!("data{len}.bin"), &pattern(len, len as u8));
            let sig = f.p(&format!("sig{i}-{len}.bin"));
            let uri = private_uri(label);
            let args = [&["dgst", md, "-engine", "pkcs11", "-keyform", "engine", "-sign", &uri][..], opts].concat();
            e.engine(&[&args[..], &["-out", &sig, &data][..]].concat());
            let verify = |file: &str| {
                let args = [&["dgst", md, "-verify", public, "-keyform", "DER"][..], opts].concat();
                f.openssl_verifies(&[&args[..], &["-signature", &sig, file][..]].concat())
            };
            assert!(verify(&data), "openssl refuses {label} {md} {opts:?} of {len} bytes");
            assert!(!verify(&f.write("other.bin", &pattern(len + 1, 0))), "{label} {md} verifies another message");
        }
    }
}

#[test]
fn pkeyutl_decrypts_pkcs1_and_oaep_ciphertexts() {
    let e = EngineFixture::new();
    let f = &e.f;
    // The public key as the engine reads it from the token equals pkcs11-tool's.
    let engine_pub = f.p("engine-pub.pem");
    e.engine(&[
        "pkey",
        "-engine",
        "pkcs11",
        "-inform",
        "engine",
        "-pubin",
        "-in",
        &format!("pkcs11:token={TOKEN};object=rsa-decrypt;type=public"),
        "-pubout",
        "-out",
        &engine_pub,
    ]);
    let tool_pub = f.rsa_public_der("a2", "tool-pub.der");
    let engine_der = f.openssl(&["pkey", "-pubin", "-in", &engine_pub, "-outform", "DER"]);
    assert_eq!(hex::encode(engine_der), hex::encode(f.read("tool-pub.der")));

    let paddings: [(&str, &[&str], usize); 3] = [
        ("pkcs1", &["-pkeyopt", "rsa_padding_mode:pkcs1"], 245),
        ("oaep-sha1", &["-pkeyopt", "rsa_padding_mode:oaep"], 214),
        (
            "oaep-sha256",
            &["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"],
            190,
        ),
    ];
    for (name, opts, max) in paddings {
        for len in [1usize, 32, max] {
            let plain = f.write(&format!("{name}-{len}.bin"), &pattern(len, 5));
            let ct = f.p(&format!("{name}-{len}.ct"));
            let enc = [&["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", &tool_pub][..], opts].concat();
            f.openssl(&[&enc[..], &["-in", &plain, "-out", &ct][..]].concat());
            let uri = private_uri("rsa-decrypt");
            let dec = [&["pkeyutl", "-engine", "pkcs11", "-keyform", "engine", "-decrypt", "-inkey", &uri][..], opts]
                .concat();
            let out = e.engine(&[&dec[..], &["-in", &ct][..]].concat()).stdout;
            assert_eq!(hex::encode(out), hex::encode(pattern(len, 5)), "{name} decryption of {len} bytes");
        }
    }

    // Under the default profile the decryption key also signs, as its CKA_SIGN (TRUE by
    // default, as in SoftHSM2) allows: `openssl pkeyutl -sign` through the engine, checked
    // by openssl with the public key.
    let data = f.write("d.bin", b"data");
    let r = e.engine_raw(&[
        "dgst",
        "-sha256",
        "-engine",
        "pkcs11",
        "-keyform",
        "engine",
        "-sign",
        &private_uri("rsa-decrypt"),
        "-out",
        &f.p("d.sig"),
        &data,
    ]);
    assert!(r.ok(), "{}", r.report());
    f.openssl(&["dgst", "-sha256", "-verify", &tool_pub, "-keyform", "DER", "-signature", &f.p("d.sig"), &data]);
}
