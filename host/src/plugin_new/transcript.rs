//! The sample test transcript of a new project (`NAME.transcript`), in the
//! format of `ferrymail plugin test` (docs/plugin-test.md).

use super::Hook;

/// A session that exercises each chosen hook once and expects the stubs'
/// answers (every hook continues).
pub fn sample(name: &str, hooks: &[Hook]) -> String {
    let mut out = format!(
        "# A sample session for {name}: `ferrymail plugin test {name}.wasm --transcript {name}.transcript`.\n\
         # Every hook of the new project continues; edit the expectations as the plugin grows.\n"
    );
    for h in hooks {
        out.push_str(&format!("# hook: {}\n", h.interface()));
    }
    out
}
