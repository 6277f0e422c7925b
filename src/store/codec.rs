//! The byte layouts of the keystore: an object's attribute list, repeated
//! `type: u64 LE | sealed: u8 | len: u32 LE | value`; the authenticated token state; and
//! the canonical bytes of each kind of row that its MAC covers: a tag naming the kind, the
//! token's serial, then every field as `len: u32 LE | bytes`, so that no two rows (of any
//! kind, of any token) have the same bytes.

use super::{Alias, StoredAttr, Tag, TokenRecord, TokenState, TrailHead};
use crate::error::{Error, Result};

/// The canonical bytes of a row: `kind`, then each field length-prefixed.
struct Row(Vec<u8>);

impl Row {
    fn new(kind: &str, serial: &str) -> Row {
        let mut r = Row(Vec::with_capacity(128));
        r.field(kind.as_bytes());
        r.field(serial.as_bytes());
        r
    }

    fn field(&mut self, b: &[u8]) -> &mut Row {
        // Fields are bounded far below 4 GiB (a template's values are, see abi::conv).
        self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }

    fn num(&mut self, v: u64) -> &mut Row {
        self.field(&v.to_le_bytes())
    }
}

/// An object: its handle (row id), uid, class, privacy, generation and stored attributes.
pub fn object_row(serial: &str, id: u64, uid: &str, class: u64, private: bool, gen: u64, attrs: &[u8]) -> Vec<u8> {
    let mut r = Row::new("object", serial);
    r.num(id).field(uid.as_bytes()).num(class).num(private as u64).num(gen).field(attrs);
    r.0
}

pub fn alias_row(serial: &str, a: &Alias) -> Vec<u8> {
    let mut r = Row::new("alias", serial);
    r.field(a.name.as_bytes()).field(a.key_id.as_bytes()).num(a.created as u64).num(a.updated as u64);
    r.0
}

/// An anchor of a segment of the audit trail.
pub fn anchor_row(serial: &str, h: &TrailHead) -> Vec<u8> {
    let mut r = Row::new("trail anchor", serial);
    r.field(h.segment.as_bytes()).num(h.records).num(h.bytes).field(&h.link);
    r.0
}

pub fn tag_row(serial: &str, t: &Tag) -> Vec<u8> {
    let mut r = Row::new("tag", serial);
    r.field(t.key_id.as_bytes()).field(t.key.as_bytes()).field(t.value.as_bytes());
    r.0
}

/// A named user: its name, PIN wrap and creation (its failure counter changes without
/// the key and is accounted for by the state instead).
pub fn user_row(serial: &str, name: &str, wrap: &[u8], created: i64) -> Vec<u8> {
    let mut r = Row::new("user", serial);
    r.field(name.as_bytes()).field(wrap).num(created as u64);
    r.0
}

/// The token state: what never changes without the key (label, creation, PIN wraps) and
/// the state of the last write under the key.
pub fn state_row(rec: &TokenRecord, st: &TokenState) -> Vec<u8> {
    let mut r = Row::new("state", &rec.serial);
    r.field(rec.label.as_bytes()).num(rec.created as u64).field(&rec.so_wrap);
    match &rec.user_wrap {
        Some(w) => r.num(1).field(w),
        None => r.num(0),
    };
    r.num(st.generation)
        .num(st.so_failed as u64)
        .num(st.user_failed as u64)
        .num(st.named_failed as u64)
        .field(&st.digest);
    // A state from before the MAC tree has none, and its MAC stays as it was.
    if let Some(t) = &st.tree {
        r.field(t);
    }
    r.0
}

/// The stored form of a state: generation u64 LE | three counters u32 LE | digest (32) |
/// [MAC tree root (32)] | MAC (32).
pub fn encode_state(st: &TokenState) -> Vec<u8> {
    let mut out = Vec::with_capacity(116);
    out.extend_from_slice(&st.generation.to_le_bytes());
    for c in [st.so_failed, st.user_failed, st.named_failed] {
        out.extend_from_slice(&c.to_le_bytes());
    }
    out.extend_from_slice(&st.digest);
    if let Some(t) = &st.tree {
        out.extend_from_slice(t);
    }
    out.extend_from_slice(&st.mac);
    out
}

pub fn decode_state(b: &[u8]) -> Result<TokenState> {
    let bad = || Error::storage("token state record is corrupt");
    let tree = match b.len() {
        84 => None,
        116 => Some(b[52..84].try_into().map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    let u32_at = |i: usize| b[i..i + 4].try_into().map(u32::from_le_bytes).map_err(|_| bad());
    Ok(TokenState {
        generation: b[..8].try_into().map(u64::from_le_bytes).map_err(|_| bad())?,
        so_failed: u32_at(8)?,
        user_failed: u32_at(12)?,
        named_failed: u32_at(16)?,
        digest: b[20..52].try_into().map_err(|_| bad())?,
        tree,
        mac: b[b.len() - 32..].to_vec(),
    })
}

/// An object's attribute list as stored.
pub fn encode(attrs: &[StoredAttr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(attrs.iter().map(|a| 13 + a.value.len()).sum());
    for a in attrs {
        out.extend_from_slice(&a.ty.to_le_bytes());
        out.push(a.sealed as u8);
        out.extend_from_slice(&(a.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&a.value);
    }
    out
}

/// The attribute list back; anything that is not a whole list is corrupt.
pub fn decode(mut buf: &[u8]) -> Result<Vec<StoredAttr>> {
    let corrupt = || Error::storage("object record is corrupt");
    let mut attrs = Vec::new();
    while !buf.is_empty() {
        if buf.len() < 13 {
            return Err(corrupt());
        }
        let ty = u64::from_le_bytes(buf[..8].try_into().map_err(|_| corrupt())?);
        let sealed = match buf[8] {
            0 => false,
            1 => true,
            _ => return Err(corrupt()),
        };
        let len = u32::from_le_bytes(buf[9..13].try_into().map_err(|_| corrupt())?) as usize;
        let rest = &buf[13..];
        if rest.len() < len {
            return Err(corrupt());
        }
        attrs.push(StoredAttr { ty, sealed, value: rest[..len].to_vec() });
        buf = &rest[len..];
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let attrs = vec![
            StoredAttr { ty: 0, sealed: false, value: vec![4, 0, 0, 0, 0, 0, 0, 0] },
            StoredAttr { ty: 0x11, sealed: true, value: vec![9; 40] },
            StoredAttr { ty: 3, sealed: false, value: vec![] },
        ];
        let enc = encode(&attrs);
        assert_eq!(decode(&enc).unwrap(), attrs);
        for cut in 1..enc.len() {
            if let Ok(d) = decode(&enc[..cut]) {
                // Only a cut on an attribute boundary decodes, and to a prefix.
                assert!(d.len() < attrs.len() && attrs.starts_with(&d));
            }
        }
        let mut bad = enc.clone();
        bad[8] = 7;
        assert!(decode(&bad).is_err());
    }

    #[test]
    fn rows_of_different_kinds_or_fields_never_share_bytes() {
        // The length prefixes keep ("ab", "c") and ("a", "bc") apart.
        let t =
            |k: &str, v: &str| tag_row("s", &Tag { key_id: "id".into(), key: k.into(), value: v.into(), mac: vec![] });
        assert_ne!(t("ab", "c"), t("a", "bc"));
        assert_ne!(user_row("s", "n", b"w", 1), user_row("t", "n", b"w", 1));
        assert_ne!(object_row("s", 1, "u", 3, false, 5, b"x"), object_row("s", 2, "u", 3, false, 5, b"x"));
        assert_ne!(object_row("s", 1, "u", 3, false, 5, b"x"), object_row("s", 1, "u", 3, false, 6, b"x"));
    }

    #[test]
    fn state_round_trip() {
        let st = TokenState {
            generation: 9,
            so_failed: 1,
            user_failed: 2,
            named_failed: 3,
            digest: [7; 32],
            tree: Some([6; 32]),
            mac: vec![8; 32],
        };
        assert_eq!(decode_state(&encode_state(&st)).unwrap(), st);
        assert!(decode_state(&encode_state(&st)[1..]).is_err());
        // A state from before the MAC tree still reads, and its row is what it was.
        let old = TokenState { tree: None, ..st.clone() };
        assert_eq!(decode_state(&encode_state(&old)).unwrap(), old);
        let rec = TokenRecord {
            serial: "s".into(),
            label: "l".into(),
            slot_id: 0,
            so_wrap: vec![1],
            user_wrap: None,
            so_failed: 0,
            user_failed: 0,
            created: 0,
            generation: 9,
            state: None,
        };
        assert!(state_row(&rec, &st).starts_with(&state_row(&rec, &old)));
        assert_ne!(state_row(&rec, &st), state_row(&rec, &old));
    }
}
