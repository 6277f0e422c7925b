//! Rotation of symmetric and HMAC keys: the period rules, on-demand rotation (old
//! ciphertexts and MACs stay readable, new ones use new material, the earlier version is
//! its own read-only object, at most 25 rotations) and automatic rotation when the period
//! has passed. (Asymmetric keys do not rotate, and cannot be made yet: not covered.)

mod common;
#[path = "kms_common.rs"]
mod kms;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use common::oracle::{self, Hash};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;
use kms::*;

const AAD: &[u8] = b"rotation context";
const PT: &[u8] = b"written before the rotation, read after it";

fn gcm<'a>(iv: &'a mut [u8]) -> Mechanism<'a> {
    Mechanism::AesGcm(GcmParams::new(iv, AAD, 128.into()).expect("GCM parameters"))
}

fn gcm_encrypt(session: &Session, key: ObjectHandle, iv: &[u8]) -> Vec<u8> {
    let mut iv = iv.to_vec();
    session.encrypt(&gcm(&mut iv), key, PT).expect("C_Encrypt (GCM)")
}

fn gcm_decrypt(session: &Session, key: ObjectHandle, iv: &[u8], ct: &[u8]) -> Vec<u8> {
    let mut iv = iv.to_vec();
    session.decrypt(&gcm(&mut iv), key, ct).expect("C_Decrypt (GCM)")
}

/// Whether the oracle opens `ct` with `key` (a 256-bit AES key).
fn oracle_opens(key: &[u8], iv: &[u8], ct: &[u8]) -> bool {
    let c = aes_gcm::Aes256Gcm::new_from_slice(key).expect("AES-256 key");
    c.decrypt(aes_gcm::Nonce::from_slice(iv), Payload { msg: ct, aad: AAD }).is_ok()
}

/// The rotation status of `id` through the command line.
fn status(cli: &Cli, id: &str) -> serde_json::Value {
    cli.ok(&["kms", "get-key-rotation-status", "--key-id", id])
}

fn rotate(cli: &Cli, id: &str) -> Result<serde_json::Value, AwsError> {
    cli.run(&["kms", "rotate-key-on-demand", "--key-id", id])
}

/// Every object of the key (all its versions), found by its CKA_ID.
fn objects_of_key(session: &Session, id: &str) -> Vec<u64> {
    find(session, &[Attribute::Id(uuid_bytes(id))])
}

#[test]
fn rotation_period_is_90_to_2560_days() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        for key in [generate_aes(&session), generate_hmac(&session)] {
            let id = key_id_of(&session, key);
            let enable = |days: &str| {
                cli.run(&["kms", "enable-key-rotation", "--key-id", &id, "--rotation-period-in-days", days])
            };
            for bad in ["89", "2561", "0"] {
                let e = enable(bad).expect_err(bad);
                assert_eq!(e.code, "ValidationException", "{bad}: {}", e.stderr);
                assert_eq!(e.operation, "EnableKeyRotation");
                assert_eq!(status(&cli, &id)["KeyRotationEnabled"], false);
            }
            for days in [90, 2560] {
                let before = now();
                enable(&days.to_string()).expect("a valid period");
                let st = status(&cli, &id);
                assert_eq!(st["KeyRotationEnabled"], true, "{st:#}");
                assert_eq!(st["RotationPeriodInDays"], days);
                assert_about(st["NextRotationDate"].as_str().unwrap(), before, days * DAY);
                assert!(read_bool(&session, key, ROTATION_ENABLED));
                assert_eq!(read_ulong(&session, key, ROTATION_PERIOD_DAYS), days as u64);
            }
            cli.ok(&["kms", "enable-key-rotation", "--key-id", &id]);
            assert_eq!(status(&cli, &id)["RotationPeriodInDays"], 365, "the default");
            cli.ok(&["kms", "disable-key-rotation", "--key-id", &id]);
            assert_eq!(status(&cli, &id)["KeyRotationEnabled"], false);
            assert_eq!(version_of(&session, key), 1, "enabling rotates nothing");
        }
    });
}

#[test]
fn on_demand_rotation_keeps_old_ciphertexts_readable() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let v1 = random_bytes(32);
        let key = known_key(&session, KeyType::AES, &v1);
        let id = key_id_of(&session, key);
        let iv = random_bytes(12);
        let cbc_iv: [u8; 16] = random_bytes(16).try_into().unwrap();
        let cbc = Mechanism::AesCbcPad(cbc_iv);
        let old_gcm = gcm_encrypt(&session, key, &iv);
        assert_eq!(old_gcm, oracle::gcm_encrypt(&v1, &iv, AAD, PT));
        let old_cbc = session.encrypt(&cbc, key, PT).expect("C_Encrypt (CBC)");
        assert_eq!(old_cbc, oracle::cbc_encrypt(&v1, &cbc_iv, PT, true));

        let out = rotate(&cli, &id).expect("rotate-key-on-demand");
        assert!(out["KeyId"].as_str().unwrap().ends_with(&id), "{out:#}");

        // Same handle, new version, new material.
        assert_eq!(version_of(&session, key), 2);
        assert_eq!(read_ulong(&session, key, ON_DEMAND_ROTATIONS), 1);
        assert!(read_bool(&session, key, CURRENT));
        let material = cli.describe(&id)["CurrentKeyMaterialId"].as_str().unwrap().to_string();
        assert_eq!(material.len(), 64, "{material}");
        let listed = cli.ok(&["kms", "list-key-rotations", "--key-id", &id]);
        assert_eq!(listed["Rotations"][0]["KeyMaterialId"], material.as_str(), "{listed:#}");
        assert_eq!(listed["Rotations"][0]["KeyMaterialState"], "CURRENT", "{listed:#}");
        let v2 = value_of(&session, key);
        assert_eq!(v2.len(), 32);
        assert_ne!(v2, v1);

        // GCM finds the old version by its tag.
        assert_eq!(gcm_decrypt(&session, key, &iv, &old_gcm), PT);
        // New encryptions use the new material only.
        let new_gcm = gcm_encrypt(&session, key, &iv);
        assert_eq!(new_gcm, oracle::gcm_encrypt(&v2, &iv, AAD, PT));
        assert!(!oracle_opens(&v1, &iv, &new_gcm), "old material opens new data");
        assert!(oracle_opens(&v2, &iv, &new_gcm));
        assert_eq!(gcm_decrypt(&session, key, &iv, &new_gcm), PT);
        // CBC cannot tell versions apart: the current key reads only new data.
        assert_ne!(session.decrypt(&cbc, key, &old_cbc).ok().as_deref(), Some(PT));

        // The earlier version is an object of its own, read-only, for decryption.
        let objects = objects_of_key(&session, &id);
        assert_eq!(objects.len(), 2, "{objects:?}");
        assert!(objects.contains(&key.handle()));
        let old = handle_of(*objects.iter().find(|h| **h != key.handle()).unwrap());
        assert_eq!(key_id_of(&session, old), id);
        assert_eq!(version_of(&session, old), 1);
        assert!(!read_bool(&session, old, CURRENT));
        assert_eq!(value_of(&session, old), v1);
        assert!(!flag_of(&session, old, AttributeType::Encrypt));
        assert!(!flag_of(&session, old, AttributeType::Wrap));
        assert!(flag_of(&session, old, AttributeType::Decrypt));
        assert_eq!(session.decrypt(&cbc, old, &old_cbc).expect("old CBC"), PT);
        expect_rv(session.encrypt_init(&cbc, old), RvError::KeyFunctionNotPermitted, Function::EncryptInit);
        expect_rv(session.destroy_object(old), RvError::ActionProhibited, Function::DestroyObject);

        let listed = cli.ok(&["kms", "list-key-rotations", "--key-id", &id]);
        assert_eq!(listed["Rotations"].as_array().unwrap().len(), 1, "{listed:#}");
        let r = records_of(&s.keystore(), "RotateKeyOnDemand", &id);
        assert_eq!(r.len(), 1, "{r:#?}");
        assert!(r[0].get("errorCode").is_none());
    });
}

#[test]
fn hmac_rotation_keeps_old_macs_verifiable() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let v1 = random_bytes(32);
        let key = known_key(&session, KeyType::GENERIC_SECRET, &v1);
        let id = key_id_of(&session, key);
        let data = b"authenticated before the rotation";
        let mac = |k| session.sign(&Mechanism::Sha256Hmac, k, data).expect("C_Sign");
        let old_mac = mac(key);
        assert_eq!(old_mac, Hash::Sha256.hmac(&v1, data));

        rotate(&cli, &id).expect("rotate-key-on-demand");
        assert_eq!(version_of(&session, key), 2);
        let v2 = value_of(&session, key);
        assert_ne!(v2, v1);

        session
            .verify(&Mechanism::Sha256Hmac, key, data, &old_mac)
            .expect("a MAC made before the rotation verifies after it");
        let new_mac = mac(key);
        assert_eq!(new_mac, Hash::Sha256.hmac(&v2, data));
        assert_ne!(new_mac, old_mac);
        session.verify(&Mechanism::Sha256Hmac, key, data, &new_mac).expect("new MAC");
        let mut forged = old_mac.clone();
        forged[0] ^= 1;
        expect_rv(
            session.verify(&Mechanism::Sha256Hmac, key, data, &forged),
            RvError::SignatureInvalid,
            Function::Verify,
        );
    });
}

#[test]
fn the_26th_on_demand_rotation_is_refused() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        let iv = random_bytes(12);
        let first = gcm_encrypt(&session, key, &iv);
        for n in 1..=25 {
            rotate(&cli, &id).unwrap_or_else(|e| panic!("rotation {n}: {}", e.stderr));
        }
        let e = rotate(&cli, &id).expect_err("a 26th rotation");
        assert_eq!(e.code, "LimitExceededException", "{}", e.stderr);
        assert_eq!(e.operation, "RotateKeyOnDemand");
        assert_eq!(version_of(&session, key), 26);
        assert_eq!(read_ulong(&session, key, ON_DEMAND_ROTATIONS), 25);
        assert_eq!(objects_of_key(&session, &id).len(), 26);
        // The first material still opens the first ciphertext.
        assert_eq!(gcm_decrypt(&session, key, &iv, &first), PT);
        let refused = records_of(&s.keystore(), "RotateKeyOnDemand", &id);
        assert_eq!(refused.len(), 26);
        assert_eq!(refused[25]["errorCode"], "LimitExceededException");
    });
}

#[test]
fn automatic_rotation_happens_once_the_period_has_passed() {
    scenario!(|s| {
        match s.role() {
            MAIN => {
                let (_p, _slot, session) = ready();
                let cli = Cli::new(&s.config_path(), USER_PIN);
                let key = generate_aes(&session);
                let id = key_id_of(&session, key);
                cli.ok(&["kms", "enable-key-rotation", "--key-id", &id, "--rotation-period-in-days", "90"]);
                s.put("key", key.handle());
                s.put("id", &id);
                s.put("days", 89);
                s.peer("before");
                assert_eq!(version_of(&session, key), 1);
                s.put("days", 91);
                s.peer("after");
                assert_eq!(version_of(&session, key), 2, "every process sees the rotation");
                aes_round_trip(&session, key);
                let st = status(&cli, &id);
                assert_eq!(st["KeyRotationEnabled"], true);
                // The next rotation is one period after the one that happened.
                assert_about(st["NextRotationDate"].as_str().unwrap(), now(), (91 + 90) * DAY);
            }
            role => {
                let days: i64 = s.get("days").parse().unwrap();
                // This process has not loaded the module yet: its clock starts moved.
                std::env::set_var("KMSTOKEN_CLOCK_OFFSET", kms::clock_offset(days * DAY));
                let (_p, _slot, session) = rejoin();
                let key = handle_of(s.get_u64("key"));
                let id = s.get("id");
                aes_round_trip(&session, key);
                let rotations = records_of(&s.keystore(), "RotateKey", &id);
                if role == "before" {
                    assert_eq!(version_of(&session, key), 1, "89 days into 90");
                    assert!(rotations.is_empty(), "{rotations:#?}");
                } else {
                    assert_eq!(version_of(&session, key), 2, "91 days into 90");
                    let e = service_event(&s.keystore(), "RotateKey", &id);
                    assert_eq!(e["requestParameters"]["keyVersion"], 2, "{e:#}");
                    assert_eq!(objects_of_key(&session, &id).len(), 2);
                }
            }
        }
    });
}
