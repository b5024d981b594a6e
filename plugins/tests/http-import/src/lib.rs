//! Exports the rcpt and data hooks and imports `wasi:http/types`, which
//! this host does not provide: `plugin check` must still list both hooks,
//! name the missing import and say what usually causes it.

use ferrymail_plugin_sdk::*;

mod http {
    wit_bindgen::generate!({ path: "wit", world: "http-client" });
}

struct HttpImport;

#[plugin]
impl Plugin for HttpImport {
    fn new() -> Self {
        // Referenced, so the import stays in the component; never called
        // unless the (never granted) config asks for it.
        if host::config_value().get("fetch").is_some() {
            drop(http::wasi::http::types::Fields::new());
        }
        HttpImport
    }

    fn rcpt(&self, _s: &Session, _e: &Envelope, _rcpt: &str) -> Verdict {
        Verdict::Continue
    }

    fn data(&self, _s: &Session, _e: &Envelope, _msg: &Message) -> DataResult {
        DataResult::verdict(Verdict::Continue)
    }
}
