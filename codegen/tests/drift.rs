//! The committed bindings' types are what the schema generates.

#[test]
fn every_generated_file_matches_the_schema() {
    let drifted = proliferate_codegen::drifted(&proliferate_codegen::repository());
    assert!(
        drifted.is_empty(),
        "{drifted:?} drifted: run `cargo run -p proliferate-codegen`"
    );
}
