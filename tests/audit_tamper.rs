//! Tampering with the audit trail of a real token, one kind at a time, as someone with
//! write access to the keystore's files (and no PIN) could: an edited record, a removed
//! one, an inserted one, two swapped, the segment re-chained without the key, records cut
//! off the end, an older copy of the segment put back, a forged anchor, and the database
//! put back behind the trail. `kmstoken audit verify` (which logs in: the audit key comes
//! from the master key) reports each, naming the segment and the record (a shortened or
//! removed segment is recorded at open as well), and the trail verifies again once the
//! file is restored.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::mechanism::Mechanism;
use kms::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::{Path, PathBuf};

const CBC: Mechanism<'static> = Mechanism::AesCbcPad([3; 16]);
const LINK: usize = 16;

/// `kmstoken audit verify`: its report, or what it printed on failure.
fn verify(cli: &Cli) -> Result<Value, String> {
    audit_verify(cli)
}

/// Asserts that `audit verify` fails, and that its message holds every one of `words`.
#[track_caller]
fn detected(cli: &Cli, words: &[&str]) {
    let e = verify(cli).expect_err("tampering not detected");
    for w in words {
        assert!(e.contains(w), "{w:?} not in: {e}");
    }
}

/// A segment's header length and its records' byte ranges (length, body and link).
fn records(bytes: &[u8]) -> (usize, Vec<Range<usize>>) {
    assert_eq!(&bytes[..8], b"KMSTRL01");
    let start = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let mut v = Vec::new();
    let mut at = start;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let end = at + 4 + len + LINK;
        assert!(end <= bytes.len(), "a whole trail has no torn record");
        v.push(at..end);
        at = end;
    }
    (start, v)
}

/// The link of a record without the key, as the format defines it: SHA-256 over a label,
/// the link before and the framed record, cut to 16 bytes.
fn keyless_link(prev: &[u8], framed: &[u8]) -> [u8; LINK] {
    let d = Sha256::new().chain_update(b"unkeyed\0").chain_update(prev).chain_update(framed).finalize();
    d[..LINK].try_into().unwrap()
}

/// The segment that holds this process's uses of the key `id`.
fn our_segment(keystore: &Path, id: &str) -> PathBuf {
    let name = records_of(keystore, "Encrypt", id)
        .iter()
        .find(|r| r["userIdentity"]["processId"] == std::process::id())
        .expect("our Encrypt records")["segment"]
        .as_str()
        .unwrap()
        .to_string();
    trail_dir(keystore).join(name)
}

#[test]
fn every_kind_of_tampering_is_reported_with_its_record() {
    scenario!(|s| {
        let (p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        session.encrypt(&CBC, key, b"x").unwrap();
        let seg = our_segment(&s.keystore(), &id);
        let early = std::fs::read(&seg).unwrap();
        for _ in 0..5 {
            session.encrypt(&CBC, key, b"x").unwrap();
        }
        // The logout anchors the segment in the database (a write under the key).
        session.logout().unwrap();
        drop(session);
        p.finalize().unwrap();
        let good = std::fs::read(&seg).unwrap();
        let (start, at) = records(&good);
        assert!(at.len() >= 7, "Login, CreateKey, 6 × Encrypt: {}", at.len());
        let n = at.len();
        let report = verify(&cli).expect("the untouched trail verifies");
        assert_eq!(report["Unsealed"], 0, "{report:#}");
        let name = seg.file_name().unwrap().to_string_lossy().to_string();
        let record = |i: usize| good[at[i].clone()].to_vec();
        let put = |bytes: &[u8]| std::fs::write(&seg, bytes).unwrap();

        // Edited: one letter of record 5's event name.
        let mut edited = good.clone();
        edited[at[4].start + 4 + 25 + 2] ^= 0x20;
        put(&edited);
        detected(&cli, &[&name, "record 5 ", "altered"]);

        // Removed: record 3.
        let mut removed = good[..at[2].start].to_vec();
        removed.extend_from_slice(&good[at[3].start..]);
        put(&removed);
        detected(&cli, &[&name, "record 3 ", "removed, added or moved"]);

        // Inserted: a copy of record 3 after it.
        let mut inserted = good[..at[3].start].to_vec();
        inserted.extend(record(2));
        inserted.extend_from_slice(&good[at[3].start..]);
        put(&inserted);
        detected(&cli, &[&name, "record 4 ", "removed, added or moved"]);

        // Reordered: records 4 and 5 swapped.
        let mut swapped = good[..at[3].start].to_vec();
        swapped.extend(record(4));
        swapped.extend(record(3));
        swapped.extend_from_slice(&good[at[5].start..]);
        put(&swapped);
        detected(&cli, &[&name, "record 4 ", "removed, added or moved"]);

        // Re-chained without the key: every record marked keyless and linked again with
        // the keyless hash, a chain anyone can make.
        let mut rechained = good[..start].to_vec();
        let mut prev: [u8; LINK] =
            Sha256::new().chain_update(b"kmstoken audit v1\0").chain_update(&good[..start]).finalize()[..LINK]
                .try_into()
                .unwrap();
        for r in &at {
            let mut framed = good[r.start..r.end - LINK].to_vec();
            framed[4] &= !1;
            let link = keyless_link(&prev, &framed);
            rechained.extend(&framed);
            rechained.extend(link);
            prev = link;
        }
        put(&rechained);
        detected(&cli, &[&name, "replaced"]);

        // Truncated: the last two records cut off.
        put(&good[..at[n - 2].start]);
        detected(&cli, &[&name, "cut off"]);
        // Seen at open too, before any login: the anchor's length against the file's.
        let at_open = audit_records(&s.keystore()).into_iter().any(|r| {
            r["eventName"] == "IntegrityCheck"
                && r["errorMessage"].as_str().is_some_and(|m| m.contains(&name) && m.contains("shorter"))
        });
        assert!(at_open, "the truncation is recorded when the token is opened");

        // An older copy of the segment, from before the last uses.
        put(&early);
        detected(&cli, &[&name, "cut off or an older copy"]);

        // The segment removed.
        std::fs::remove_file(&seg).unwrap();
        detected(&cli, &[&name, "gone"]);

        put(&good);
        verify(&cli).expect("the restored trail verifies");
    });
}

/// The token's database files.
fn database(keystore: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(keystore)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("token-") && p.is_file())
        .collect()
}

#[test]
fn a_database_put_back_behind_the_trail_is_reported() {
    scenario!(|s| {
        let (p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        drop(session);
        p.finalize().unwrap();
        // A copy of the database (the library closed: no WAL left behind).
        let copies: Vec<(PathBuf, Vec<u8>)> = database(&s.keystore())
            .into_iter()
            .map(|f| {
                let b = std::fs::read(&f).unwrap();
                (f, b)
            })
            .collect();
        // Changes made after the copy, each recorded with the generation it made.
        for args in [
            ["kms", "disable-key", "--key-id", &id],
            ["kms", "enable-key", "--key-id", &id],
            ["kms", "disable-key", "--key-id", &id],
            ["kms", "enable-key", "--key-id", &id],
        ] {
            cli.ok(&args);
        }
        verify(&cli).expect("the trail verifies");
        // Put back, with the anchor file that would tell removed too: the trail alone tells.
        for f in database(&s.keystore()) {
            std::fs::remove_file(f).unwrap();
        }
        for (f, b) in &copies {
            std::fs::write(f, b).unwrap();
        }
        for f in std::fs::read_dir(s.keystore()).unwrap().map(|e| e.unwrap().path()) {
            if f.extension().is_some_and(|x| x == "anchor") {
                std::fs::remove_file(f).unwrap();
            }
        }
        detected(&cli, &["put back from an older copy"]);
    });
}

#[test]
fn a_forged_anchor_is_reported() {
    scenario!(|s| {
        let (p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let key = generate_aes(&session);
        for _ in 0..3 {
            session.encrypt(&CBC, key, b"x").unwrap();
        }
        session.logout().unwrap();
        drop(session);
        p.finalize().unwrap();
        verify(&cli).expect("the trail verifies");
        let db = database(&s.keystore()).into_iter().find(|f| f.extension().is_some_and(|x| x == "sqlite")).unwrap();
        let conn = rusqlite::Connection::open(&db).unwrap();
        let changed = conn.execute("UPDATE trail_anchors SET records = records - 1", []).unwrap();
        assert!(changed >= 1);
        drop(conn);
        detected(&cli, &["anchor", "MAC"]);
    });
}

#[test]
fn a_long_run_of_uses_is_anchored_without_a_logout() {
    const USES: usize = 4200;
    scenario!(|s| {
        if s.role() == "user" {
            let (p, _slot, session) = rejoin();
            let key = handle_of(s.get_u64("key"));
            for _ in 0..USES {
                session.encrypt(&CBC, key, b"x").unwrap();
            }
            // Gone without C_Logout or C_Finalize: only the periodic anchor stands.
            std::mem::forget(session);
            std::mem::forget(p);
            return;
        }
        let (p, _slot, session) = ready();
        let key = generate_aes(&session);
        s.put("key", key.handle());
        drop(session);
        p.finalize().unwrap();
        s.peer("user");
        let cli = Cli::new(&s.config_path(), USER_PIN);
        verify(&cli).expect("the trail verifies");
        let seg = trail_segments(&s.keystore())
            .into_iter()
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .expect("the user's segment");
        let bytes = std::fs::read(&seg).unwrap();
        let (_, at) = records(&bytes);
        assert!(at.len() > USES, "{} records", at.len());
        // Cut back to 4 000 records: below the anchor made at 4 096.
        std::fs::write(&seg, &bytes[..at[4000].start]).unwrap();
        detected(&cli, &["record 4000 ", "cut off"]);
    });
}
