//! kmstoken: a PKCS#11 token whose keys live by the rules of a cloud KMS, on a local
//! encrypted keystore.
//!
//! Layers, outermost first: `abi` (the C shell) and `api` (the AWS KMS operations, which
//! the command line drives), `library` (slots, sessions and every PKCS#11 function in Rust
//! types), `kms` (the gate every key use passes, key lifecycle,
//! audit, the ciphertext blob), `token` and `object` (login, objects and their attribute
//! rules), `mech` (one unit per mechanism) over `crypto` (the only module that names the
//! crypto engine) and `crypto_ffi` (the raw RSA operations its safe API lacks), and `store`
//! (persistence) with `seal` (encryption at rest). Only `abi` and `crypto_ffi` hold code
//! that the compiler cannot check for memory safety.

/// An enum whose every variant has one name (an AWS spelling), stated once: the enum,
/// `ALL` (in order), `name()` and `parse()`.
macro_rules! named_enum {
    ($(#[$m:meta])* $vis:vis enum $E:ident { $($(#[$vm:meta])* $V:ident => $name:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $E {
            $($(#[$vm])* $V,)*
        }

        impl $E {
            pub const ALL: &'static [$E] = &[$($E::$V,)*];

            pub const fn name(self) -> &'static str {
                match self {
                    $($E::$V => $name,)*
                }
            }

            pub fn parse(name: &str) -> Option<$E> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }
    };
}

pub mod abi;
pub mod api;
pub mod config;
pub mod crypto;
pub mod crypto_ffi;
pub mod error;
pub mod kms;
pub mod library;
pub mod mech;
pub mod message;
pub mod object;
pub mod seal;
pub mod session;
pub mod store;
pub mod token;
pub mod vendor;
