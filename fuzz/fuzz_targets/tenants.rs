//! The tenants loader on any text: tenants or an error, never a panic, never a key in an error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

const KEY_PREFIX: &str = "fuzz-secret-";

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // Every variable holds a distinct key derived from its name. Text quoted back from the
    // input itself is no leak, so inputs that hold the prefix are not checked for it.
    let env = |name: &str| Some(format!("{KEY_PREFIX}{name}"));
    let check_leaks = !src.contains(KEY_PREFIX);
    match sluice_policy::parse_tenants(src, Path::new("tenants.yaml"), &env) {
        Ok(tenants) => {
            for name in tenants.names() {
                assert!(!name.is_empty());
            }
            let shown = format!("{tenants:?}");
            assert!(!check_leaks || !shown.contains(KEY_PREFIX), "a key in Debug");
        }
        Err(e) => assert!(
            !check_leaks || !e.to_string().contains(KEY_PREFIX),
            "a key in an error: {e}"
        ),
    }
});
