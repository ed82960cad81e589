//! What the gateway decodes from clients: any bytes either fail to decode as a `ClientFrame`
//! with an error, or decode to a value that decodes to itself again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proliferate_core::protocol::v1::normalize;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice(data) else {
        return;
    };
    if let Ok(decoded) = normalize("ClientFrame", &json) {
        assert_eq!(normalize("ClientFrame", &decoded).as_ref(), Ok(&decoded));
    }
});
