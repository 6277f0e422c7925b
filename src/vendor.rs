//! Vendor constants; include/kmstoken.h declares the same values for C clients and a
//! test holds the two equal.

use cryptoki_sys::CK_ULONG;

pub const CKA_KMSTOKEN_KEY_ID: CK_ULONG = 0xCB4D_0001;
pub const CKA_KMSTOKEN_KEY_STATE: CK_ULONG = 0xCB4D_0002;
pub const CKA_KMSTOKEN_KEY_VERSION: CK_ULONG = 0xCB4D_0003;
pub const CKA_KMSTOKEN_KEY_SPEC: CK_ULONG = 0xCB4D_0004;
pub const CKA_KMSTOKEN_KEY_USAGE: CK_ULONG = 0xCB4D_0005;
pub const CKA_KMSTOKEN_ORIGIN: CK_ULONG = 0xCB4D_0006;
pub const CKA_KMSTOKEN_CREATION_DATE: CK_ULONG = 0xCB4D_0007;
pub const CKA_KMSTOKEN_DESCRIPTION: CK_ULONG = 0xCB4D_0008;
pub const CKA_KMSTOKEN_DELETION_DATE: CK_ULONG = 0xCB4D_0009;
pub const CKA_KMSTOKEN_PENDING_WINDOW_DAYS: CK_ULONG = 0xCB4D_000A;
pub const CKA_KMSTOKEN_ROTATION_ENABLED: CK_ULONG = 0xCB4D_000B;
pub const CKA_KMSTOKEN_ROTATION_PERIOD_DAYS: CK_ULONG = 0xCB4D_000C;
pub const CKA_KMSTOKEN_NEXT_ROTATION_DATE: CK_ULONG = 0xCB4D_000D;
pub const CKA_KMSTOKEN_ON_DEMAND_ROTATIONS: CK_ULONG = 0xCB4D_000E;
pub const CKA_KMSTOKEN_ARN: CK_ULONG = 0xCB4D_000F;
pub const CKA_KMSTOKEN_CURRENT: CK_ULONG = 0xCB4D_0010;
/// Imported key material (Origin EXTERNAL): its expiry, its keyed fingerprint, and the
/// sealed wrapping key of the latest import parameters. A range of their own, apart from
/// the key metadata above.
pub const CKA_KMSTOKEN_VALID_TO: CK_ULONG = 0xCB4D_0020;
pub const CKA_KMSTOKEN_MATERIAL_FINGERPRINT: CK_ULONG = 0xCB4D_0021;
pub const CKA_KMSTOKEN_IMPORT_PARAMETERS: CK_ULONG = 0xCB4D_0022;
/// The key policy stored by put-key-policy (UTF-8 JSON); absent: the default policy.
pub const CKA_KMSTOKEN_KEY_POLICY: CK_ULONG = 0xCB4D_0011;

pub const KMSTOKEN_STATE_ENABLED: CK_ULONG = 1;
pub const KMSTOKEN_STATE_DISABLED: CK_ULONG = 2;
pub const KMSTOKEN_STATE_PENDING_DELETION: CK_ULONG = 3;
pub const KMSTOKEN_STATE_PENDING_IMPORT: CK_ULONG = 4;

pub const CKM_KMSTOKEN_ENCRYPT: CK_ULONG = 0xCB4D_0101;
pub const CKM_KMSTOKEN_DECRYPT: CK_ULONG = 0xCB4D_0102;

/// Every constant by its C name, for the header test.
pub const ALL: &[(&str, CK_ULONG)] = &[
    ("CKA_KMSTOKEN_KEY_ID", CKA_KMSTOKEN_KEY_ID),
    ("CKA_KMSTOKEN_KEY_STATE", CKA_KMSTOKEN_KEY_STATE),
    ("CKA_KMSTOKEN_KEY_VERSION", CKA_KMSTOKEN_KEY_VERSION),
    ("CKA_KMSTOKEN_KEY_SPEC", CKA_KMSTOKEN_KEY_SPEC),
    ("CKA_KMSTOKEN_KEY_USAGE", CKA_KMSTOKEN_KEY_USAGE),
    ("CKA_KMSTOKEN_ORIGIN", CKA_KMSTOKEN_ORIGIN),
    ("CKA_KMSTOKEN_CREATION_DATE", CKA_KMSTOKEN_CREATION_DATE),
    ("CKA_KMSTOKEN_DESCRIPTION", CKA_KMSTOKEN_DESCRIPTION),
    ("CKA_KMSTOKEN_DELETION_DATE", CKA_KMSTOKEN_DELETION_DATE),
    ("CKA_KMSTOKEN_PENDING_WINDOW_DAYS", CKA_KMSTOKEN_PENDING_WINDOW_DAYS),
    ("CKA_KMSTOKEN_ROTATION_ENABLED", CKA_KMSTOKEN_ROTATION_ENABLED),
    ("CKA_KMSTOKEN_ROTATION_PERIOD_DAYS", CKA_KMSTOKEN_ROTATION_PERIOD_DAYS),
    ("CKA_KMSTOKEN_NEXT_ROTATION_DATE", CKA_KMSTOKEN_NEXT_ROTATION_DATE),
    ("CKA_KMSTOKEN_ON_DEMAND_ROTATIONS", CKA_KMSTOKEN_ON_DEMAND_ROTATIONS),
    ("CKA_KMSTOKEN_ARN", CKA_KMSTOKEN_ARN),
    ("CKA_KMSTOKEN_CURRENT", CKA_KMSTOKEN_CURRENT),
    ("CKA_KMSTOKEN_VALID_TO", CKA_KMSTOKEN_VALID_TO),
    ("CKA_KMSTOKEN_MATERIAL_FINGERPRINT", CKA_KMSTOKEN_MATERIAL_FINGERPRINT),
    ("CKA_KMSTOKEN_IMPORT_PARAMETERS", CKA_KMSTOKEN_IMPORT_PARAMETERS),
    ("CKA_KMSTOKEN_KEY_POLICY", CKA_KMSTOKEN_KEY_POLICY),
    ("KMSTOKEN_STATE_ENABLED", KMSTOKEN_STATE_ENABLED),
    ("KMSTOKEN_STATE_DISABLED", KMSTOKEN_STATE_DISABLED),
    ("KMSTOKEN_STATE_PENDING_DELETION", KMSTOKEN_STATE_PENDING_DELETION),
    ("KMSTOKEN_STATE_PENDING_IMPORT", KMSTOKEN_STATE_PENDING_IMPORT),
    ("CKM_KMSTOKEN_ENCRYPT", CKM_KMSTOKEN_ENCRYPT),
    ("CKM_KMSTOKEN_DECRYPT", CKM_KMSTOKEN_DECRYPT),
];

#[cfg(test)]
mod tests {
    use super::ALL;
    use std::collections::BTreeMap;

    /// Reads `#define NAME VALUE` lines of the header (hex with UL suffix or decimal).
    fn header_constants() -> BTreeMap<String, u64> {
        let text = include_str!("../include/kmstoken.h");
        text.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                if it.next()? != "#define" {
                    return None;
                }
                let name = it.next()?;
                let raw = it.next()?.trim_end_matches("UL");
                let v = match raw.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16).ok()?,
                    None => raw.parse().ok()?,
                };
                Some((name.to_string(), v))
            })
            .collect()
    }

    #[test]
    fn header_and_rust_constants_agree() {
        let header = header_constants();
        let rust: BTreeMap<String, u64> = ALL.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        assert_eq!(header, rust, "include/kmstoken.h and src/vendor.rs differ");
    }

    #[test]
    fn vendor_values_lie_in_vendor_space() {
        for (name, v) in ALL {
            if name.starts_with("CKA_") || name.starts_with("CKM_") {
                assert!(v & 0x8000_0000 != 0, "{name} outside CKx_VENDOR_DEFINED");
            }
        }
    }
}
