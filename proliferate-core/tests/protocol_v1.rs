//! Golden fixtures, schema drift and doc agreement for protocol v1.

use std::path::{Path, PathBuf};

use proliferate_core::protocol::v1::*;
use serde_json::Value;

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Fixture {
    name: String,
    decode_as: String,
    json: Value,
    error_contains: Option<String>,
}

fn fixtures(kind: &str) -> Vec<Fixture> {
    let folder = repository_root().join("fixtures/protocol/v1").join(kind);
    let mut paths: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("{}: {error}", folder.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut document: Value = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            Fixture {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                decode_as: document["decode_as"]
                    .as_str()
                    .expect("decode_as")
                    .to_owned(),
                json: document["json"].take(),
                error_contains: document["error_contains"].as_str().map(str::to_owned),
            }
        })
        .collect()
}

/// Decodes `json` as the named wire type and encodes it again.
fn decode_and_encode(decode_as: &str, json: &Value) -> Result<Value, String> {
    normalize(decode_as, json).map_err(|error| error.to_string())
}

#[test]
fn valid_fixtures_round_trip_unchanged() {
    let valid = fixtures("valid");
    assert!(!valid.is_empty());
    for fixture in valid {
        let encoded = decode_and_encode(&fixture.decode_as, &fixture.json)
            .unwrap_or_else(|error| panic!("{} does not decode: {error}", fixture.name));
        assert_eq!(
            encoded, fixture.json,
            "{} changed in a round trip",
            fixture.name
        );
    }
}

#[test]
fn invalid_fixtures_fail_with_an_error_that_names_the_problem() {
    let invalid = fixtures("invalid");
    assert!(!invalid.is_empty());
    for fixture in invalid {
        let expected = fixture
            .error_contains
            .unwrap_or_else(|| panic!("{} has no error_contains", fixture.name));
        match decode_and_encode(&fixture.decode_as, &fixture.json) {
            Ok(_) => panic!("{} decoded but must fail", fixture.name),
            Err(error) => assert!(
                error.contains(&expected),
                "{}: error {error:?} does not name {expected:?}",
                fixture.name
            ),
        }
    }
}

fn fixture_types(decode_as: &str, pick: impl Fn(&Value) -> Option<&str>) -> Vec<String> {
    fixtures("valid")
        .iter()
        .filter(|fixture| fixture.decode_as == decode_as)
        .filter_map(|fixture| pick(&fixture.json).map(str::to_owned))
        .collect()
}

#[test]
fn fixtures_cover_every_event_and_frame_type() {
    let server = fixture_types("ServerFrame", |json| json["type"].as_str());
    let client = fixture_types("ClientFrame", |json| json["type"].as_str());
    let events = fixture_types("ServerFrame", |json| json["event"]["type"].as_str());
    for (known, seen, what) in [
        (ServerFrame::KNOWN_TYPES, &server, "server frame"),
        (ClientFrame::KNOWN_TYPES, &client, "client frame"),
        (Event::KNOWN_TYPES, &events, "event"),
    ] {
        for name in known {
            assert!(
                seen.iter().any(|type_name| type_name == name),
                "no valid fixture for {what} `{name}`"
            );
        }
    }
}

#[test]
fn unknown_types_and_fields_are_kept() {
    let json = serde_json::json!({
        "type": "event", "session_id": "s", "seq": 3, "timestamp": 1, "future": [1],
        "event": {"type": "hologram_projected", "angle": 42},
    });
    let frame: ServerFrame = serde_json::from_value(json.clone()).unwrap();
    let ServerFrame::Event(envelope) = &frame else {
        panic!("not an event: {frame:?}")
    };
    assert!(matches!(envelope.event, Event::Unknown(_)));
    assert_eq!(envelope.event.type_name(), "hologram_projected");
    assert_eq!(envelope.extra["future"], serde_json::json!([1]));
    assert_eq!(serde_json::to_value(&frame).unwrap(), json);
}

#[test]
fn error_codes_have_stable_names_and_statuses() {
    for code in ErrorCode::ALL {
        assert_eq!(&ErrorCode::parse(code.as_str()), code);
        assert!((400..600).contains(&code.http_status()), "{code}");
    }
    assert_eq!(
        ErrorCode::parse("brand_new"),
        ErrorCode::Unknown("brand_new".into())
    );
    let problem = Problem::new(ErrorCode::NotFound, "no session abc");
    assert_eq!(problem.status, 404);
}

#[test]
fn committed_schema_matches_the_types() {
    let path = repository_root().join("docs/schema/v1.json");
    let generated = serde_json::to_string_pretty(&wire_schema()).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/schema/v1.json drifted from the types; run `UPDATE_SCHEMA=1 cargo test -p proliferate-core --test protocol_v1` and commit it"
    );
}

#[test]
fn protocol_doc_names_every_type_and_code() {
    let doc = std::fs::read_to_string(repository_root().join("docs/protocol.md")).unwrap();
    let names = ServerFrame::KNOWN_TYPES
        .iter()
        .chain(ClientFrame::KNOWN_TYPES)
        .chain(Event::KNOWN_TYPES)
        .map(|name| name.to_string())
        .chain(ErrorCode::ALL.iter().map(|code| code.as_str().to_owned()));
    for name in names {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/protocol.md does not describe `{name}`"
        );
    }
}
