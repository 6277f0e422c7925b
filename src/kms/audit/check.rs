//! Reading the trail back: every segment's records checked link by link under the audit
//! key, against the database's anchors and generation (`verify`), and the records of all
//! segments rendered as CloudTrail events in time order (`read_all`).

use super::format::{self, Header, Link, LINK_LEN, MAX_BODY};
use super::{Head, SEGMENT_EXT};
use crate::crypto::Hmac;
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One thing `verify` found wrong: the segment, the record (1-based; 0 for the segment as
/// a whole) and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub segment: String,
    pub record: u64,
    pub reason: String,
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Report {
    pub segments: u64,
    pub records: u64,
    /// Records linked under the key.
    pub keyed: u64,
    /// Records at the end of a segment that no keyed record covers yet (written by a
    /// process that never logged in): they verify as a chain, but anyone could have made
    /// that chain.
    pub unsealed: u64,
    /// Segments that end in a record cut short (a crash or a full disk mid-write): the
    /// piece is ignored; it never held an acknowledged use.
    pub torn: u64,
    /// The highest database generation a keyed record saw.
    pub generation: u64,
    pub problems: Vec<Problem>,
}

/// The segment files of a trail directory, oldest first (their names start with the time
/// they were made).
pub fn segments(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
        Err(e) => return Err(Error::storage(format!("{}: {e}", dir.display()))),
    };
    for e in entries {
        let p = e.map_err(|e| Error::storage(format!("{}: {e}", dir.display())))?.path();
        if p.extension().is_some_and(|x| x == SEGMENT_EXT) {
            v.push(p);
        }
    }
    v.sort();
    Ok(v)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// One record as found in a segment.
struct Found<'a> {
    framed: &'a [u8],
    link: Link,
    /// Where the record ends in the file.
    end: u64,
}

/// Walks the records of a segment's bytes: each framed record with its link, then how the
/// segment ends (None: cleanly; Some(n): n bytes of a record cut short; Err: damage).
fn walk(bytes: &[u8], start: usize, mut f: impl FnMut(Found) -> bool) -> std::result::Result<Option<usize>, String> {
    let mut at = start;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let Some(len) = rest.get(..4).map(|l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize) else {
            return Ok(Some(rest.len()));
        };
        if len == 0 || len > MAX_BODY {
            return Err(format!("a record length of {len} at byte {at}: the file was damaged"));
        }
        let total = 4 + len + LINK_LEN;
        if rest.len() < total {
            return Ok(Some(rest.len()));
        }
        let mut link = [0u8; LINK_LEN];
        link.copy_from_slice(&rest[4 + len..total]);
        at += total;
        if !f(Found { framed: &rest[..4 + len], link, end: at as u64 }) {
            return Ok(None);
        }
    }
    Ok(None)
}

/// Checks every segment of `dir` under `key`, and the segments against the database's
/// `anchors`. The generation the trail saw is in the report, for `behind`.
pub fn verify(dir: &Path, key: &Hmac, anchors: &[Head]) -> Report {
    let mut report = Report::default();
    let mut anchored: HashMap<&str, &Head> = anchors.iter().map(|a| (a.segment.as_str(), a)).collect();
    let paths = match segments(dir) {
        Ok(p) => p,
        Err(e) => {
            report.problems.push(Problem { segment: String::new(), record: 0, reason: e.to_string() });
            return report;
        }
    };
    for path in paths {
        let name = file_name(&path);
        report.segments += 1;
        let anchor = anchored.remove(name.as_str());
        if let Err(p) = verify_segment(&path, &name, key, anchor, &mut report) {
            report.problems.push(p);
        }
    }
    for (name, a) in anchored {
        report.problems.push(Problem {
            segment: name.to_string(),
            record: 0,
            reason: format!(
                "the database anchored this segment at {} records, and it is gone: it was removed",
                a.records
            ),
        });
    }
    report
}

/// The problem when the database, at `generation` (read after the trail, so that records
/// written meanwhile cannot be ahead of it), is behind what the trail's keyed records saw:
/// it was put back from an older copy.
pub fn behind(report: &Report, generation: u64) -> Option<Problem> {
    (report.generation > generation).then(|| Problem {
        segment: String::new(),
        record: 0,
        reason: format!(
            "the database is at generation {generation}, and the trail recorded generation {}: the database was \
             put back from an older copy",
            report.generation
        ),
    })
}

fn verify_segment(
    path: &Path,
    name: &str,
    key: &Hmac,
    anchor: Option<&Head>,
    report: &mut Report,
) -> std::result::Result<(), Problem> {
    let problem = |record: u64, reason: String| Problem { segment: name.to_string(), record, reason };
    let bytes = std::fs::read(path).map_err(|e| problem(0, format!("unreadable: {e}")))?;
    let (header, start) =
        Header::decode(&bytes).ok_or_else(|| problem(0, "no segment header: not a trail file".into()))?;
    let mut prev = header.first_link();
    let mut n = 0u64;
    let mut keyed_seen = false;
    let mut unkeyed_run = 0u64;
    let mut at_anchor: Option<(Link, u64)> = None;
    let mut broken: Option<Problem> = None;
    let ended = walk(&bytes, start, |f| {
        let seq = n + 1;
        let Some(r) = format::decode(&f.framed[4..]) else {
            broken = Some(problem(seq, "not a record: it was altered".into()));
            return false;
        };
        if r.seq != seq {
            broken = Some(problem(
                seq,
                format!("sequence number {} where {seq} was expected: a record was removed, added or moved", r.seq),
            ));
            return false;
        }
        if keyed_seen && !r.keyed {
            broken = Some(problem(seq, "a record without the key after keyed ones: the segment was re-chained".into()));
            return false;
        }
        if format::link(r.keyed.then_some(key), &prev, f.framed) != f.link {
            let why = if r.keyed {
                "its link does not match under the audit key: the record was altered, or one before it was \
                 removed, added or moved, or the chain was made without the key"
            } else {
                "its link does not match: the record was altered, or one before it was removed, added or moved"
            };
            broken = Some(problem(seq, why.into()));
            return false;
        }
        if r.keyed {
            keyed_seen = true;
            unkeyed_run = 0;
            report.keyed += 1;
            report.generation = report.generation.max(r.generation);
        } else {
            unkeyed_run += 1;
        }
        prev = f.link;
        n = seq;
        if anchor.is_some_and(|a| a.records == seq) {
            at_anchor = Some((f.link, f.end));
        }
        true
    });
    report.records += n;
    if let Some(p) = broken {
        return Err(p);
    }
    match ended {
        Ok(None) => {}
        Ok(Some(_)) => report.torn += 1,
        Err(why) => return Err(problem(n + 1, why)),
    }
    report.unsealed += unkeyed_run;
    if let Some(a) = anchor {
        if a.records > n {
            return Err(problem(
                n,
                format!(
                    "the segment ends at record {n}, and the database anchored {} records: records were cut off or \
                     an older copy was put back",
                    a.records
                ),
            ));
        }
        let here = if a.records == 0 { Some((header.first_link(), start as u64)) } else { at_anchor };
        if here != Some((a.link, a.bytes)) {
            return Err(problem(
                a.records,
                "the record the database anchored is not this one: the segment was replaced".into(),
            ));
        }
    }
    Ok(())
}

/// The records of a trail in time order, decoded but not rendered: a record as JSON is
/// made one at a time (`render`), so that a long trail is exported without holding it all
/// as JSON.
pub struct Trail {
    /// The records of a trail from before segments (`token-<serial>.jsonl` beside the
    /// directory), already JSON; they come first.
    pub legacy: Vec<Value>,
    segments: Vec<(Header, String)>,
    records: Vec<(usize, format::Record)>,
}

impl Trail {
    pub fn read(dir: &Path) -> Result<Trail> {
        let old = dir.with_extension("jsonl");
        let legacy = if old.exists() { super::legacy::tail(&old, usize::MAX, None)? } else { Vec::new() };
        let paths = segments(dir)?;
        let mut segments = Vec::new();
        let mut records = Vec::new();
        for path in paths {
            let bytes = std::fs::read(&path).map_err(|e| Error::storage(format!("{}: {e}", path.display())))?;
            let Some((header, start)) = Header::decode(&bytes) else { continue };
            let i = segments.len();
            // A damaged segment yields what it holds up to the damage; `verify` says where.
            let _ = walk(&bytes, start, |f| match format::decode(&f.framed[4..]) {
                Some(r) => {
                    records.push((i, r));
                    true
                }
                None => false,
            });
            segments.push((header, file_name(&path)));
        }
        records.sort_by_key(|(i, r)| (r.time, *i, r.seq));
        Ok(Trail { legacy, segments, records })
    }

    /// How many records the segments hold (the legacy ones aside).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Record `i` (in time order) as a CloudTrail event.
    pub fn render(&self, i: usize) -> Value {
        let (seg, r) = &self.records[i];
        let (header, name) = &self.segments[*seg];
        format::render(header, name, r)
    }
}

/// Every record of the trail as a CloudTrail event, oldest first.
pub fn read_all(dir: &Path) -> Result<Vec<Value>> {
    let t = Trail::read(dir)?;
    let mut out = t.legacy.clone();
    out.extend((0..t.len()).map(|i| t.render(i)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{AuditLog, Event};
    use super::*;
    use crate::crypto::Hash;

    fn log_with(dir: &Path, n: usize) -> AuditLog {
        let log = AuditLog::new(dir.to_path_buf(), "s");
        log.set_key(&[9; 32]);
        for _ in 0..n {
            log.append(&Event {
                name: "Encrypt",
                principal: "user",
                key_id: Some("k"),
                read_only: true,
                ..Default::default()
            })
            .unwrap();
        }
        log
    }

    fn key() -> Hmac {
        Hmac::new(Hash::Sha256, &[9; 32])
    }

    fn one_segment(dir: &Path) -> PathBuf {
        let s = segments(dir).unwrap();
        assert_eq!(s.len(), 1);
        s[0].clone()
    }

    /// Offsets of each record's start in a segment.
    fn offsets(bytes: &[u8]) -> Vec<usize> {
        let (_, start) = Header::decode(bytes).unwrap();
        let mut v = vec![];
        let mut at = start;
        walk(bytes, start, |f| {
            v.push(at);
            at = f.end as usize;
            true
        })
        .unwrap();
        v
    }

    #[test]
    fn each_kind_of_tampering_names_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_with(dir.path(), 5);
        let heads = log.heads();
        let seg = one_segment(dir.path());
        let good = std::fs::read(&seg).unwrap();
        let at = offsets(&good);
        assert!(verify(dir.path(), &key(), &heads).problems.is_empty());
        let record = |i: usize| good[at[i]..*at.get(i + 1).unwrap_or(&good.len())].to_vec();
        let check = |bytes: Vec<u8>, record: u64, words: &str| {
            std::fs::write(&seg, bytes).unwrap();
            let r = verify(dir.path(), &key(), &heads);
            assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
            assert_eq!(r.problems[0].record, record, "{:?}", r.problems);
            assert!(r.problems[0].reason.contains(words), "{:?}", r.problems);
        };
        // Edit: one byte of record 3's name.
        let mut edited = good.clone();
        let name_at = at[2] + 4 + 1 + 24 + 2;
        edited[name_at] ^= 0x20;
        check(edited, 3, "link does not match");
        // Delete record 2.
        let mut deleted = good[..at[1]].to_vec();
        deleted.extend_from_slice(&good[at[2]..]);
        check(deleted, 2, "sequence number 3 where 2");
        // Insert a copy of record 2 after it.
        let mut inserted = good[..at[2]].to_vec();
        inserted.extend(record(1));
        inserted.extend_from_slice(&good[at[2]..]);
        check(inserted, 3, "sequence number 2 where 3");
        // Reorder records 2 and 3.
        let mut reordered = good[..at[1]].to_vec();
        reordered.extend(record(2));
        reordered.extend(record(1));
        reordered.extend_from_slice(&good[at[3]..]);
        check(reordered, 2, "sequence number 3 where 2");
        // Truncate to 3 records: the anchor says 5.
        check(good[..at[3]].to_vec(), 3, "cut off");
        // Re-chained without the key: every link recomputed as a keyless chain.
        let (header, start) = Header::decode(&good).unwrap();
        let mut rechained = good[..start].to_vec();
        let mut prev = header.first_link();
        for i in 0..5 {
            let r = record(i);
            let mut framed = r[..r.len() - LINK_LEN].to_vec();
            framed[4] &= !1; // the keyed flag off
            let l = format::link(None, &prev, &framed);
            rechained.extend(&framed);
            rechained.extend(l);
            prev = l;
        }
        check(rechained, 5, "replaced");
        // A keyed record forged with another key.
        let mut forged = good[..at[4]].to_vec();
        let r = record(4);
        let framed = r[..r.len() - LINK_LEN].to_vec();
        let mut wrong = Hmac::new(Hash::Sha256, &[1; 32]);
        wrong.update(&[]);
        let prev = good[at[4] - LINK_LEN..at[4]].try_into().unwrap();
        forged.extend(&framed);
        forged.extend(format::link(Some(&wrong), &prev, &framed));
        check(forged, 5, "under the audit key");
        std::fs::write(&seg, &good).unwrap();
        // The segment removed.
        std::fs::remove_file(&seg).unwrap();
        let r = verify(dir.path(), &key(), &heads);
        assert!(r.problems[0].reason.contains("gone"), "{:?}", r.problems);
        // An older database: the trail saw a later generation.
        std::fs::write(&seg, &good).unwrap();
        let log = AuditLog::new(dir.path().to_path_buf(), "s");
        log.set_key(&[9; 32]);
        log.saw_generation(12);
        log.append(&Event { name: "DisableKey", principal: "user", ..Default::default() }).unwrap();
        let r = verify(dir.path(), &key(), &heads);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(behind(&r, 11).is_some_and(|p| p.reason.contains("older copy")));
        assert!(behind(&r, 12).is_none());
    }

    #[test]
    fn a_torn_record_is_ignored_and_an_unkeyed_tail_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().to_path_buf(), "s");
        log.append(&Event { name: "Login", principal: "user", ..Default::default() }).unwrap();
        log.append(&Event { name: "Login", principal: "user", ..Default::default() }).unwrap();
        let seg = one_segment(dir.path());
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2]);
        std::fs::write(&seg, bytes).unwrap();
        let r = verify(dir.path(), &key(), &[]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!((r.records, r.unsealed, r.torn, r.keyed), (2, 2, 1, 0));
        assert_eq!(read_all(dir.path()).unwrap().len(), 2);
    }
}
