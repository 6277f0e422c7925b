//! Link options of the PKCS#11 module.

fn main() {
    // The crypto engine keeps per-thread state behind a pthread key whose destructor
    // lives in this library. An application that dlclose()s the module and later ends a
    // thread that used it would call into unmapped code, so the module stays loaded once
    // it has been loaded (the usual remedy for such libraries).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    // The module's own calls to its C_* functions (the function lists) must reach its own
    // definitions, not those of another PKCS#11 module already loaded in the process
    // (with LD_PRELOAD=libsofthsm2.so, kmstoken handed out SoftHSM2's functions).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-Bsymbolic");
    println!("cargo:rerun-if-changed=build.rs");
}
