//! The policy loader on any text: it returns a policy or an error naming where, never panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "FUZZ_URL").then(|| "http://127.0.0.1:9".to_owned());
    match sluice_policy::parse_policy(src, Path::new("fuzz.yaml"), &env) {
        Ok(policy) => {
            // What the gateway reads of a loaded policy must hold together.
            assert!(!policy.name.is_empty());
            assert!(policy.local.max_queue >= 1);
            assert!(policy.scoring.threshold.is_finite());
            assert_eq!(&*policy.text, src);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
