//! The audit trail's own costs, outside any token: appending records (one thread, then
//! two, each with a segment of its own), `audit verify`'s check of every link, and the
//! rendering of every record as CloudTrail JSON (`audit export`).
//!
//! cargo bench --bench auditbench -- [RECORDS ...]     (default: 1000000)
//!
//! Records look like a key use's (an Encrypt with a key id and a mechanism). Nothing
//! asserts on timings; the figures go to docs/benchmark.md.

use kmstoken::crypto::{Hash, Hmac};
use kmstoken::kms::audit::{check, AuditLog, Event};
use std::time::Instant;

const KEY: [u8; 32] = [0x42; 32];

fn event() -> Event<'static> {
    Event {
        name: "Encrypt",
        principal: "user",
        key_id: Some("4f2c8a1e-9b3d-4c6e-8f10-2a3b4c5d6e7f"),
        key_version: Some(1),
        mechanism: Some(0x1087),
        read_only: true,
        ..Default::default()
    }
}

fn main() {
    let counts: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.replace('_', "").parse().ok()).collect();
    let counts = if counts.is_empty() { vec![1_000_000] } else { counts };
    for n in counts {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = AuditLog::new(dir.path().to_path_buf(), "bench");
        log.set_key(&KEY);
        let e = event();
        let t = Instant::now();
        for _ in 0..n / 2 {
            log.append(&e).expect("append");
        }
        let one = t.elapsed();
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..n / 4 {
                        log.append(&e).expect("append");
                    }
                });
            }
        });
        let two = t.elapsed();
        let bytes: u64 = check::segments(dir.path()).unwrap().iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
        let t = Instant::now();
        let report = check::verify(dir.path(), &Hmac::new(Hash::Sha256, &KEY), &[]);
        let verify = t.elapsed();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.records, n / 2 + 2 * (n / 4));
        let t = Instant::now();
        let trail = check::Trail::read(dir.path()).unwrap();
        let exported: usize = (0..trail.len()).map(|i| trail.render(i).to_string().len()).sum();
        let export = t.elapsed();
        println!(
            "{n} records, {:.0} MB: append {:.2} µs/record (1 thread), {:.2} µs/record/thread (2 threads); \
             verify {:.2} s; render as CloudTrail JSON {:.2} s ({:.0} MB of JSON)",
            bytes as f64 / 1e6,
            one.as_secs_f64() * 1e6 / (n / 2) as f64,
            two.as_secs_f64() * 1e6 / (n / 4) as f64,
            verify.as_secs_f64(),
            export.as_secs_f64(),
            exported as f64 / 1e6,
        );
    }
}
