//! What clients decode from the gateway: any bytes either fail to decode as a `ServerFrame`
//! with an error, or decode to a value that decodes to itself again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proliferate_core::protocol::v1::normalize;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice(data) else {
        return;
    };
    if let Ok(decoded) = normalize("ServerFrame", &json) {
        assert_eq!(normalize("ServerFrame", &decoded).as_ref(), Ok(&decoded));
    }
});
