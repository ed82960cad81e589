//! Sets up linking against Node-API for the addon.
fn main() {
    napi_build::setup();
}
