//! Link options of the PKCS#11 module.

fn main() {
    // The crypto engine keeps per-thread state behind a pthread key whose destructor
    // lives in this library. An application that dlclose()s the module and later ends a
    // thread that used it would call into unmapped code, so the module stays loaded once
    // it has been loaded (the usual remedy for such libraries).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo:rerun-if-changed=build.rs");
}
