//! The sample test transcript of a new project (`NAME.transcript`), in the
//! format of `ferrymail plugin test` (docs/plugin-test.md): one session
//! that reaches every SMTP hook, with the expectations the stubs meet.

use super::Hook;

/// What the transcript says where a chosen hook runs.
fn note(hooks: &[Hook], hook: Hook, text: &str) -> String {
    if hooks.contains(&hook) { format!("# {}: {text}\n", hook.interface()) } else { String::new() }
}

pub fn sample(name: &str, hooks: &[Hook]) -> String {
    let mut out = format!(
        "# A sample session for {name}; run it with\n\
         #   ferrymail plugin test {name}.wasm --transcript {name}.transcript\n\
         # The plugin runs in the server's default chain (after @tenant), so\n\
         # where its stubs continue the default plugins decide, as on a live\n\
         # server. Change the expectations as the plugin learns to decide:\n\
         # `< 550 5.7.1 *text*` then `decided-by {name}`, `header X-Name: *`,\n\
         # `kv KEY = VALUE`. The format: docs/plugin-test.md.\n\
         domain example.com\n\
         account bob@example.com\n\n"
    );
    out += &note(hooks, Hook::Connect, "runs before the greeting");
    out += "< 220\n";
    out += &note(hooks, Hook::Helo, "runs here");
    out += "> EHLO client.example.org\n< 250\n";
    out += &note(hooks, Hook::Mail, "runs here");
    out += "> MAIL FROM:<alice@example.org>\n< 250 2.1.0\n";
    out += &note(hooks, Hook::Rcpt, "runs here; the stub continues, so `local` accepts bob");
    out += "> RCPT TO:<bob@example.com>\n< 250 2.1.5\ndecided-by local\n";
    out += "> DATA\n< 354\n";
    out += &note(hooks, Hook::Data, "runs when the message is in; the stub adds no header");
    out += "message <<EOF\nFrom: alice@example.org\nTo: bob@example.com\nSubject: hello\n\nHi Bob.\nEOF\n< 250 2.0.0\n";
    out += &note(hooks, Hook::Vrfy, "runs here; the stub answers none, so `vrfy-expn` decides");
    if hooks.contains(&Hook::Vrfy) {
        out += "> VRFY bob\n";
    }
    out += &note(hooks, Hook::Expn, "runs here; the stub answers none, so `vrfy-expn` decides");
    if hooks.contains(&Hook::Expn) {
        out += "> EXPN bob\n";
    }
    out += "> QUIT\n< 221\n";
    let later: Vec<&str> = hooks
        .iter()
        .filter(|h| matches!(h, Hook::Auth | Hook::Route | Hook::Retry | Hook::Events))
        .map(|h| h.interface())
        .collect();
    if !later.is_empty() {
        out += &format!(
            "# Not exercised here: {} (auth runs on `> AUTH PLAIN …` with an\n\
             # `account ADDRESS PASSWORD` line; route, retry and events run at delivery).\n",
            later.join(", ")
        );
    }
    out
}
