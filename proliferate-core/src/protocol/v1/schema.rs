//! The JSON Schema of the wire, generated from the types.

use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use super::*;

fn add<T: JsonSchema>(generator: &mut SchemaGenerator, roots: &mut Map<String, Value>) {
    let schema = generator.subschema_for::<T>();
    roots.insert(T::schema_name().into_owned(), schema.to_value());
}

/// The JSON Schema (draft 2020-12) of every frame and HTTP body of protocol v1.
///
/// `docs/schema/v1.json` is this value, pretty-printed; a test fails when the two drift.
pub fn wire_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut roots = Map::new();
    add::<ServerFrame>(&mut generator, &mut roots);
    add::<ClientFrame>(&mut generator, &mut roots);
    add::<EventEnvelope>(&mut generator, &mut roots);
    add::<CreateSessionRequest>(&mut generator, &mut roots);
    add::<SessionInfo>(&mut generator, &mut roots);
    add::<SessionList>(&mut generator, &mut roots);
    add::<SendMessageRequest>(&mut generator, &mut roots);
    add::<PromptAdmission>(&mut generator, &mut roots);
    add::<CancelOutcome>(&mut generator, &mut roots);
    add::<PermissionReplyRequest>(&mut generator, &mut roots);
    add::<EventPage>(&mut generator, &mut roots);
    add::<SnapshotInfo>(&mut generator, &mut roots);
    add::<Transcript>(&mut generator, &mut roots);
    add::<UsageReport>(&mut generator, &mut roots);
    add::<RevokeTokenRequest>(&mut generator, &mut roots);
    add::<Health>(&mut generator, &mut roots);
    add::<Problem>(&mut generator, &mut roots);
    add::<TokenClaims>(&mut generator, &mut roots);
    let definitions: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://proliferate.dev/schema/protocol/v1.json",
        "title": "Proliferate gateway sync protocol v1",
        "description": "Readers must keep unknown `type` values and unknown fields.",
        "roots": roots,
        "$defs": definitions,
    })
}
