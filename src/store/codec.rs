//! The byte layout of an object's attribute list in the keystore:
//! repeated `type: u64 LE | sealed: u8 | len: u32 LE | value`.

use super::StoredAttr;
use crate::error::{Error, Result};

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
}
