//! The audit trail against killed writers: several processes use one token key at once
//! and are killed (SIGKILL) at random instants, over and over. Each writes an
//! acknowledgement to a file of its own after every use that returned CKR_OK. At the end
//! every acknowledged use has its audit record (records of a process ≥ its
//! acknowledgements), the trail verifies, and a last writer was never blocked.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::mechanism::Mechanism;
use kms::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// How many processes use the key at once, and how many kills the test makes.
const WRITERS: usize = 3;
const KILLS: usize = 200;

/// A writer: logs in and encrypts with the key until it is killed, acknowledging each
/// use in `ack-<pid>` (one byte per use, written with write(2): a kill loses none).
fn writer(s: &Scenario) {
    let (_p, _slot, session) = rejoin();
    let key = handle_of(s.get_u64("key"));
    let path = s.dir().join(format!("ack-{}", std::process::id()));
    let mut acks = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    loop {
        session.encrypt(&Mechanism::AesCbcPad([7; 16]), key, b"audit me").expect("C_Encrypt");
        acks.write_all(b".").unwrap();
    }
}

/// Encrypt records by process id.
fn records_by_pid(s: &Scenario, id: &str) -> BTreeMap<u64, usize> {
    let mut by = BTreeMap::new();
    for r in records_of(&s.keystore(), "Encrypt", id) {
        if r.get("errorCode").is_none() {
            *by.entry(r["userIdentity"]["processId"].as_u64().unwrap()).or_default() += 1;
        }
    }
    by
}

#[test]
fn killed_writers_lose_no_acknowledged_record_and_block_no_one() {
    scenario!(|s| match s.role() {
        MAIN => {
            let (p, _slot, session) = ready();
            let key = generate_aes(&session);
            s.put("key", key.handle());
            let id = key_id_of(&session, key);
            drop(session);
            p.finalize().unwrap();

            let spawn = || -> Child {
                s.command_for("writer").stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn a writer")
            };
            let mut writers: Vec<Child> = (0..WRITERS).map(|_| spawn()).collect();
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            let mut next = || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            let started = Instant::now();
            let mut kills = 0;
            while kills < KILLS {
                std::thread::sleep(Duration::from_millis(2 + next() % 30));
                // Only a writer that is using the key: its acknowledgements have begun.
                let victim = (next() % WRITERS as u64) as usize;
                let acks = s.dir().join(format!("ack-{}", writers[victim].id()));
                if std::fs::metadata(&acks).map_or(true, |m| m.len() == 0) {
                    continue;
                }
                writers[victim].kill().unwrap();
                writers[victim].wait().unwrap();
                writers[victim] = spawn();
                kills += 1;
            }
            std::thread::sleep(Duration::from_millis(200));
            for w in &mut writers {
                w.kill().unwrap();
                w.wait().unwrap();
            }
            eprintln!("{KILLS} kills in {:?}", started.elapsed());

            // A writer after all of that still appends (nothing torn blocks it).
            let (_p, _slot, session) = rejoin();
            let key = handle_of(s.get_u64("key"));
            session.encrypt(&Mechanism::AesCbcPad([7; 16]), key, b"after").expect("C_Encrypt after the kills");
            let records = records_by_pid(s, &id);
            assert_eq!(records.get(&(std::process::id() as u64)), Some(&1), "the last use has its record");

            // Every acknowledged use has its record.
            let (mut acked, mut processes) = (0, 0);
            for entry in std::fs::read_dir(s.dir()).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let Some(pid) = name.strip_prefix("ack-") else { continue };
                let pid: u64 = pid.parse().unwrap();
                let acks = std::fs::metadata(&path).unwrap().len() as usize;
                let have = records.get(&pid).copied().unwrap_or(0);
                assert!(have >= acks, "process {pid}: {acks} acknowledged uses, {have} records");
                acked += acks;
                processes += 1;
            }
            assert!(processes >= KILLS, "{processes} writers used the key");
            assert!(acked > 0, "the writers used the key");
            eprintln!("{processes} writers, {acked} acknowledged uses, all recorded");

            // The trail verifies from end to end.
            let cli = Cli::new(&s.config_path(), USER_PIN);
            let verdict = cli.ok(&["audit", "verify"]);
            assert_eq!(verdict["Intact"], true, "{verdict:#}");
        }
        "writer" => writer(s),
        other => panic!("unknown role {other}"),
    });
}
