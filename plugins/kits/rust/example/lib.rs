//! The kit's example plugin (the same one in every language): RCPT refuses
//! recipients whose local part starts with `trap`, DATA counts messages in
//! the plugin's kv store and stamps each with `X-Kit: rust; messages=N`.
//! Made with `ferrymail plugin new example --lang rust --hooks rcpt,data`,
//! then this file replaced src/lib.rs.

use ferrymail_plugin_sdk::*;

struct Example;

#[plugin]
impl Plugin for Example {
    fn new() -> Self {
        Example
    }

    fn rcpt(&self, _session: &Session, _envelope: &Envelope, rcpt: &str) -> Verdict {
        if rcpt.to_ascii_lowercase().starts_with("trap") {
            Verdict::reject(550, "5.7.1", "No spamtraps here")
        } else {
            // "No opinion": the next plugin in the chain (e.g. `local`) decides.
            Verdict::Continue
        }
    }

    fn data(&self, _session: &Session, _envelope: &Envelope, _message: &Message) -> DataResult {
        // A kv failure (not granted, store slow) must not refuse mail: stamp "?".
        let count = match kv::incr("messages", 1, None) {
            Ok(n) => n.to_string(),
            Err(e) => {
                host::warn(&format!("kv: {e:?}"));
                "?".to_string()
            }
        };
        DataResult::verdict(Verdict::Continue).add_header("X-Kit", format!("rust; messages={count}"))
    }
}
