//! Answers what its config tells it to, so host tests can build chains of
//! real components. Config: `{"rcpt": {"action": "reject", "code": 550,
//! "enhanced": "5.7.1", "text": "…"}, "mail": …, "kv_tag": "A"}`.
//! With `kv_tag`, RCPT reports what the kv store holds under "k" and then
//! stores the tag there: tenants' namespaces must not see each other.

use ferrymail_plugin_sdk::*;
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Answer {
    action: String,
    #[serde(default)]
    code: u16,
    #[serde(default)]
    enhanced: String,
    #[serde(default)]
    text: String,
}

impl Answer {
    fn verdict(&self) -> Verdict {
        match self.action.as_str() {
            "accept" => Verdict::Accept,
            "reject" => Verdict::reject(self.code, &self.enhanced, self.text.clone()),
            "tempfail" => Verdict::tempfail(self.code, &self.enhanced, self.text.clone()),
            "disconnect" => Verdict::disconnect(self.code, &self.enhanced, self.text.clone()),
            _ => Verdict::Continue,
        }
    }
}

#[derive(Deserialize, Default)]
struct Echo {
    rcpt: Option<Answer>,
    mail: Option<Answer>,
    kv_tag: Option<String>,
}

#[plugin]
impl Plugin for Echo {
    fn new() -> Self {
        host::config().unwrap_or_default()
    }

    fn mail(&self, _s: &Session, _sender: &str) -> Verdict {
        self.mail.as_ref().map(Answer::verdict).unwrap_or(Verdict::Continue)
    }

    fn rcpt(&self, _s: &Session, _e: &Envelope, _rcpt: &str) -> Verdict {
        if let Some(tag) = &self.kv_tag {
            let seen = match kv::get_string("k") {
                Ok(v) => v.unwrap_or_else(|| "nothing".into()),
                Err(e) => format!("error {e}"),
            };
            if let Err(e) = kv::set("k", tag.as_bytes(), Some(60)) {
                return Verdict::tempfail(451, "4.3.0", format!("kv: {e}"));
            }
            return Verdict::reject(550, "5.7.1", format!("tag {tag} saw {seen}"));
        }
        self.rcpt.as_ref().map(Answer::verdict).unwrap_or(Verdict::Continue)
    }

    fn data(&self, _s: &Session, _e: &Envelope, msg: &Message) -> DataResult {
        let subject = msg.header("subject").into_iter().next().unwrap_or_default();
        let first = String::from_utf8_lossy(&msg.read(0, 4)).into_owned();
        DataResult::verdict(Verdict::Continue)
            .add_header("X-Echo", format!("size={} subject={subject} first={first}", msg.size()))
    }
}
