//! Interoperability with OpenSC's `pkcs11-tool`, with `openssl` as the independent oracle.
//!
//! Every test drives the real tools against the built `libkmstoken.so`, each in a keystore
//! of its own (a temporary directory named by `KMSTOKEN_CONF`, set on each child command,
//! so the tests run in parallel). A missing `pkcs11-tool` or `openssl` is a failure, not a
//! skip: install them with `scripts/deps.sh` (Debian's `opensc` and `openssl`).
//!
//! Written against OpenSC 0.23 (Debian 12). Two limits of that version shape the tests:
//! - `--encrypt`/`--decrypt` pick a secret key by `--id` only (a `--label` is ignored and
//!   the first secret key is taken), so the keys used for them get an id.
//! - `--write-object --type secrkey` writes AES and DES keys only; a `GENERIC:32` key is
//!   refused with "Unknown key type: 0x10". The HMAC test therefore generates an
//!   extractable generic secret with `--keygen --key-type GENERIC:32 --extractable` and
//!   learns its value with `--read-object --type secrkey`.

mod interop_common;

use interop_common::module_path;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SO_PIN: &str = "87654321";
const USER_PIN: &str = "123456";
const TOKEN_LABEL: &str = "interop";

/// Panics with a clear message when `tool` cannot be started.
fn require_tool(tool: &str, package: &str) {
    if let Err(e) = Command::new(tool).arg("--help").output() {
        panic!(
            "`{tool}` cannot be run ({e}): these interop tests need it; \
             install Debian's `{package}` package (scripts/deps.sh does)"
        );
    }
}

fn text(o: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A keystore of its own, with a configuration that hashes PINs cheaply.
struct Fixture {
    dir: tempfile::TempDir,
    conf: PathBuf,
    module: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        require_tool("pkcs11-tool", "opensc");
        require_tool("openssl", "openssl");
        let dir = tempfile::tempdir().expect("temporary directory");
        let conf = dir.path().join("kmstoken.toml");
        let store = dir.path().join("store");
        std::fs::write(
            &conf,
            format!("keystore = \"{}\"\n[argon2]\nmemory_kib = 64\niterations = 1\n", store.display()),
        )
        .expect("write configuration");
        Fixture { dir, conf, module: module_path() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).expect("write test file");
        p
    }

    /// Runs pkcs11-tool on this keystore (a new process every time).
    fn p11_raw(&self, args: &[&str]) -> Output {
        Command::new("pkcs11-tool")
            .arg("--module")
            .arg(&self.module)
            .args(args)
            .env("KMSTOKEN_CONF", &self.conf)
            .env_remove("SOFTHSM2_CONF")
            .output()
            .expect("run pkcs11-tool")
    }

    /// Runs pkcs11-tool and insists that it succeeds; returns stdout and stderr together.
    fn p11(&self, args: &[&str]) -> String {
        let o = self.p11_raw(args);
        assert!(o.status.success(), "pkcs11-tool {} failed:\n{}", args.join(" "), text(&o));
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    }

    /// pkcs11-tool on slot 0, logged in as the user.
    fn p11_user(&self, args: &[&str]) -> String {
        let mut all = vec!["--slot", "0", "--login", "--pin", USER_PIN];
        all.extend_from_slice(args);
        self.p11(&all)
    }

    /// Initialises the token on the empty slot (0 on a fresh keystore) and its user PIN.
    fn init_token(&self) {
        let slots = self.p11(&["--list-slots"]);
        assert!(
            slots.contains("Slot 0") && slots.contains("uninitialized"),
            "a fresh keystore shows empty slot 0:\n{slots}"
        );
        let out = self.p11(&["--init-token", "--slot", "0", "--label", TOKEN_LABEL, "--so-pin", SO_PIN]);
        assert!(out.contains("Token successfully initialized"), "{out}");
        let out = self.p11(&["--init-pin", "--slot", "0", "--so-pin", SO_PIN, "--pin", USER_PIN]);
        assert!(out.contains("User PIN successfully initialized"), "{out}");
    }

    /// Object labels that `-O` lists after a user login, in a new process.
    fn labels(&self) -> Vec<String> {
        self.p11_user(&["--list-objects"])
            .lines()
            .filter_map(|l| l.trim().strip_prefix("label:").map(|v| v.trim().to_string()))
            .collect()
    }

    fn openssl(&self, args: &[&str]) -> Vec<u8> {
        let o = Command::new("openssl").args(args).output().expect("run openssl");
        assert!(o.status.success(), "openssl {} failed:\n{}", args.join(" "), text(&o));
        o.stdout
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Bytes that differ from one position to the next, so that misplaced blocks show.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}

#[test]
fn init_token_and_pin_then_self_test_passes() {
    let f = Fixture::new();
    f.init_token();

    let slots = f.p11(&["--list-slots"]);
    assert!(slots.contains(&format!("token label        : {TOKEN_LABEL}")), "{slots}");
    assert!(slots.contains("token initialized") && slots.contains("PIN initialized"), "{slots}");
    assert!(slots.contains("Slot 1"), "a new empty slot follows the token:\n{slots}");

    let o = f.p11_raw(&["--slot", "0", "--test", "--login", "--pin", USER_PIN]);
    let out = text(&o);
    assert!(o.status.success(), "pkcs11-tool --test --login failed:\n{out}");
    assert!(out.contains("No errors"), "pkcs11-tool --test did not report \"No errors\":\n{out}");

    // A wrong PIN is refused as such.
    let o = f.p11_raw(&["--slot", "0", "--login", "--pin", "000000", "--list-objects"]);
    assert!(!o.status.success(), "a wrong PIN logged in:\n{}", text(&o));
    assert!(text(&o).contains("CKR_PIN_INCORRECT"), "{}", text(&o));
}

#[test]
fn aes_keygen_is_listed() {
    let f = Fixture::new();
    f.init_token();
    let out = f.p11_user(&["--keygen", "--key-type", "AES:32", "--label", "gen-aes", "--id", "a1"]);
    assert!(out.contains("Key generated") && out.contains("AES length 32"), "{out}");

    let list = f.p11_user(&["--list-objects"]);
    assert!(list.contains("Secret Key Object; AES length 32"), "{list}");
    assert_eq!(f.labels(), vec!["gen-aes".to_string()], "{list}");
    // Generated keys never leave the token unless asked to.
    assert!(!list.contains("VALUE:"), "the value of a sensitive key was shown:\n{list}");

    // The generated key works for a round trip through the module.
    let plain = f.write("plain.bin", &pattern(77, 5));
    let ct = f.path("ct.bin");
    let back = f.path("back.bin");
    let iv = "00112233445566778899aabbccddeeff";
    let (plain_s, ct_s, back_s) = (plain.to_str().unwrap(), ct.to_str().unwrap(), back.to_str().unwrap());
    f.p11_user(&["--encrypt", "-m", "AES-CBC-PAD", "--iv", iv, "--id", "a1", "-i", plain_s, "-o", ct_s]);
    assert_eq!(read(&ct).len(), 80);
    f.p11_user(&["--decrypt", "-m", "AES-CBC-PAD", "--iv", iv, "--id", "a1", "-i", ct_s, "-o", back_s]);
    assert_eq!(read(&back), read(&plain));
}

#[test]
fn aes_cbc_pad_matches_openssl() {
    let f = Fixture::new();
    f.init_token();
    let key: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(7).wrapping_add(0x42)).collect();
    let key_hex = hex::encode(&key);
    let key_file = f.write("key.bin", &key);
    // Another secret key first, so that picking the wrong key would show.
    f.p11_user(&["--keygen", "--key-type", "AES:32", "--label", "decoy", "--id", "d0"]);
    let out = f.p11_user(&[
        "--write-object",
        key_file.to_str().unwrap(),
        "--type",
        "secrkey",
        "--key-type",
        "AES:32",
        "--label",
        "known-aes",
        "--id",
        "0102",
        "--usage-decrypt", // sets CKA_ENCRYPT and CKA_DECRYPT on a secret key
    ]);
    assert!(out.contains("Created secret key") && out.contains("known-aes"), "{out}");
    let list = f.p11_user(&["--list-objects"]);
    assert!(list.contains("known-aes") && list.contains("ID:         0102"), "{list}");

    let iv = "000102030405060708090a0b0c0d0e0f";
    // Lengths around the block size, and one long enough for several reads by the tool.
    for len in [1usize, 15, 16, 17, 100, 4099] {
        let plain = f.write(&format!("plain{len}.bin"), &pattern(len, len as u8));
        let ct = f.path(&format!("ct{len}.bin"));
        let expected = f.path(&format!("ossl{len}.bin"));
        let back = f.path(&format!("back{len}.bin"));
        let (plain_s, ct_s, exp_s, back_s) =
            (plain.to_str().unwrap(), ct.to_str().unwrap(), expected.to_str().unwrap(), back.to_str().unwrap());

        f.p11_user(&[
            "--encrypt",
            "--mechanism",
            "AES-CBC-PAD",
            "--iv",
            iv,
            "--id",
            "0102",
            "--input-file",
            plain_s,
            "--output-file",
            ct_s,
        ]);
        f.openssl(&["enc", "-aes-256-cbc", "-K", &key_hex, "-iv", iv, "-in", plain_s, "-out", exp_s]);
        let (ours, theirs) = (read(&ct), read(&expected));
        assert_eq!(ours.len(), (len / 16 + 1) * 16, "CBC-PAD ciphertext length for {len} bytes");
        assert_eq!(hex::encode(&ours), hex::encode(&theirs), "AES-CBC-PAD of {len} bytes differs from openssl's");

        // Decryption of openssl's ciphertext gives the plaintext back.
        f.p11_user(&[
            "--decrypt",
            "--mechanism",
            "AES-CBC-PAD",
            "--iv",
            iv,
            "--id",
            "0102",
            "--input-file",
            exp_s,
            "--output-file",
            back_s,
        ]);
        assert_eq!(read(&back), read(&plain), "decryption of {len} bytes");
        // And openssl decrypts ours.
        let dec = f.openssl(&["enc", "-d", "-aes-256-cbc", "-K", &key_hex, "-iv", iv, "-in", ct_s]);
        assert_eq!(dec, read(&plain), "openssl's decryption of our {len}-byte ciphertext");
    }

    // A ciphertext with broken padding is refused, not decrypted to garbage.
    let mut bad = read(&f.path("ossl100.bin"));
    let n = bad.len();
    bad[n - 17] ^= 0x01; // last byte of the previous block flips the padding byte
    let bad_file = f.write("bad.bin", &bad);
    let o = f.p11_raw(&[
        "--slot",
        "0",
        "--login",
        "--pin",
        USER_PIN,
        "--decrypt",
        "-m",
        "AES-CBC-PAD",
        "--iv",
        iv,
        "--id",
        "0102",
        "-i",
        bad_file.to_str().unwrap(),
        "-o",
        f.path("bad-out.bin").to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "broken padding decrypted:\n{}", text(&o));
    assert!(text(&o).contains("CKR_ENCRYPTED_DATA_INVALID"), "{}", text(&o));
}

#[test]
fn hmac_sha256_matches_openssl() {
    let f = Fixture::new();
    f.init_token();
    // OpenSC 0.23 cannot --write-object a GENERIC key (see the top of this file): the key
    // is generated extractable and its value read back.
    let out = f.p11_user(&[
        "--keygen",
        "--key-type",
        "GENERIC:32",
        "--label",
        "mac-key",
        "--id",
        "33",
        "--extractable",
        "--usage-sign",
    ]);
    assert!(out.contains("Key generated") && out.contains("Generic secret length 32"), "{out}");
    let key_file = f.path("mac-key.bin");
    f.p11_user(&["--read-object", "--type", "secrkey", "--id", "33", "--output-file", key_file.to_str().unwrap()]);
    let key = read(&key_file);
    assert_eq!(key.len(), 32, "CKA_VALUE of a GENERIC:32 key");
    assert_ne!(key, vec![0u8; 32], "the generated key value is all zero");
    let key_hex = hex::encode(&key);

    for len in [0usize, 3, 64, 1000, 5000] {
        let data = f.write(&format!("data{len}.bin"), &pattern(len, 9));
        let mac = f.path(&format!("mac{len}.bin"));
        let (data_s, mac_s) = (data.to_str().unwrap(), mac.to_str().unwrap());
        f.p11_user(&[
            "--sign",
            "--mechanism",
            "SHA256-HMAC",
            "--id",
            "33",
            "--input-file",
            data_s,
            "--output-file",
            mac_s,
        ]);
        let expected =
            f.openssl(&["dgst", "-sha256", "-mac", "HMAC", "-macopt", &format!("hexkey:{key_hex}"), "-binary", data_s]);
        assert_eq!(expected.len(), 32);
        assert_eq!(
            hex::encode(read(&mac)),
            hex::encode(&expected),
            "HMAC-SHA256 of {len} bytes differs from openssl's"
        );
    }
}

#[test]
fn second_process_sees_key_and_deletion() {
    let f = Fixture::new();
    f.init_token();
    // Every call below is a new pkcs11-tool process.
    f.p11_user(&["--keygen", "--key-type", "AES:32", "--label", "keeper"]);
    f.p11_user(&["--keygen", "--key-type", "AES:16", "--label", "shared-key"]);
    let mut labels = f.labels();
    labels.sort();
    assert_eq!(labels, vec!["keeper".to_string(), "shared-key".to_string()]);

    let out = f.p11_user(&["--delete-object", "--type", "secrkey", "--label", "shared-key"]);
    assert!(!out.contains("error"), "{out}");
    assert_eq!(f.labels(), vec!["keeper".to_string()], "the deleted key is still listed");

    // Deleting it again finds nothing.
    let o = f.p11_raw(&[
        "--slot",
        "0",
        "--login",
        "--pin",
        USER_PIN,
        "--delete-object",
        "--type",
        "secrkey",
        "--label",
        "shared-key",
    ]);
    assert!(!o.status.success(), "deleting a deleted key succeeded:\n{}", text(&o));
    assert_eq!(f.labels(), vec!["keeper".to_string()]);
}

#[test]
fn digests_match_openssl() {
    let f = Fixture::new();
    f.init_token();
    for len in [0usize, 55, 64, 3000] {
        let data = f.write(&format!("d{len}.bin"), &pattern(len, 1));
        let data_s = data.to_str().unwrap();
        for (mech, ossl) in [("SHA256", "-sha256"), ("SHA-1", "-sha1"), ("SHA384", "-sha384"), ("SHA512", "-sha512")] {
            let out = f.path(&format!("h{len}-{mech}.bin"));
            // Digests need no login.
            f.p11(&[
                "--slot",
                "0",
                "--hash",
                "-m",
                mech,
                "--input-file",
                data_s,
                "--output-file",
                out.to_str().unwrap(),
            ]);
            let expected = f.openssl(&["dgst", ossl, "-binary", data_s]);
            assert_eq!(hex::encode(read(&out)), hex::encode(&expected), "{mech} of {len} bytes differs from openssl's");
        }
    }
}
