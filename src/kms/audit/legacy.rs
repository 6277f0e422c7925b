//! The trail as kmstoken wrote it before segments: one JSON line per record in a file
//! `token-<serial>.jsonl`, each with the SHA-256 of the one before (unkeyed). A keystore
//! from then keeps its file; `audit verify` checks its chain and says it is unkeyed, and
//! `audit tail`/`export` read its records first.

use crate::crypto::{Digest, Hash};
use crate::error::{Error, Result};
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Hash of the record before the first.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HASH_SUFFIX_LEN: usize = r#","hash":""}"#.len() + 64;

fn io(e: std::io::Error) -> Error {
    Error::storage(format!("audit log: {e}"))
}

fn sha256_hex(prev: &str, body: &[u8]) -> String {
    let mut d = Digest::new(Hash::Sha256);
    d.update(prev.as_bytes());
    d.update(body);
    d.finish().iter().map(|b| format!("{b:02x}")).collect()
}

/// The outcome of checking a log: how many records are sound, or the first problem.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact { records: u64 },
    Broken { line: u64, reason: String },
}

/// Checks every record's hash and the links between them.
pub fn verify(path: &Path) -> Result<Verdict> {
    let f = File::open(path).map_err(|e| Error::storage(format!("{}: {e}", path.display())))?;
    let mut prev = GENESIS.to_string();
    let mut n = 0u64;
    for (i, line) in BufReader::new(f).split(b'\n').enumerate() {
        let line_no = i as u64 + 1;
        let line = line.map_err(io)?;
        let broken = |reason: String| Ok(Verdict::Broken { line: line_no, reason });
        let Ok(text) = std::str::from_utf8(&line) else {
            return broken("not UTF-8".into());
        };
        if text.len() < HASH_SUFFIX_LEN + 2 {
            return broken("truncated record".into());
        }
        let (head, tail) = text.split_at(text.len() - HASH_SUFFIX_LEN);
        let Some(claimed) = tail.strip_prefix(",\"hash\":\"").and_then(|t| t.strip_suffix("\"}")) else {
            return broken("record does not end with its hash".into());
        };
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return broken("not JSON".into());
        };
        if v["prevHash"].as_str() != Some(prev.as_str()) {
            return broken("prevHash does not match the record before: a record was removed, added or moved".into());
        }
        if v["seq"].as_u64() != Some(n + 1) {
            return broken(format!("sequence number {} where {} was expected", v["seq"], n + 1));
        }
        if sha256_hex(&prev, format!("{head}}}").as_bytes()) != claimed {
            return broken("the record's content does not match its hash: it was altered".into());
        }
        prev = claimed.to_string();
        n += 1;
    }
    Ok(Verdict::Intact { records: n })
}

/// The last `count` records, optionally only those of one key.
pub fn tail(path: &Path, count: usize, key_id: Option<&str>) -> Result<Vec<Value>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut out: std::collections::VecDeque<Value> = std::collections::VecDeque::new();
    for line in BufReader::new(f).lines() {
        let Ok(v) = serde_json::from_str::<Value>(&line.map_err(io)?) else {
            continue;
        };
        if key_id.is_some_and(|k| v["requestParameters"]["keyId"].as_str() != Some(k)) {
            continue;
        }
        out.push_back(v);
        if out.len() > count {
            out.pop_front();
        }
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file as the old writer made it: each line's hash over the one before and the line
    /// without its hash.
    fn chain(bodies: &[&str]) -> String {
        let mut prev = GENESIS.to_string();
        let mut out = String::new();
        for (i, b) in bodies.iter().enumerate() {
            let head = format!(r#"{{"eventName":"{b}","seq":{},"prevHash":"{prev}""#, i + 1);
            let hash = sha256_hex(&prev, format!("{head}}}").as_bytes());
            out.push_str(&format!("{head},\"hash\":\"{hash}\"}}\n"));
            prev = hash;
        }
        out
    }

    #[test]
    fn an_old_trail_verifies_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token-s.jsonl");
        std::fs::write(&p, chain(&["Login", "Encrypt", "DisableKey"])).unwrap();
        assert_eq!(verify(&p).unwrap(), Verdict::Intact { records: 3 });
        assert_eq!(tail(&p, 2, None).unwrap().len(), 2);
        let edited = std::fs::read_to_string(&p).unwrap().replacen("Encrypt", "Encrypu", 1);
        std::fs::write(&p, edited).unwrap();
        assert!(matches!(verify(&p).unwrap(), Verdict::Broken { line: 2, .. }));
    }
}
