//! `ferrymail plugin test --record FILE`: a recording proxy. It accepts
//! one SMTP session, relays it byte for byte to a live server, and writes
//! what the client said and the server answered as a transcript
//! (docs/plugin-test.md) that `plugin test` replays.
//!
//! Replies pair with what the client sent in order (the greeting with the
//! connection, each command line or message with one reply), so a
//! pipelining client's session is written as if it had waited. What is
//! recorded of a reply: its code and enhanced code always, its text only
//! when it refuses (a 2xx text carries host names and queue ids that
//! differ from run to run; a refusal's text is the plugin's own words).
//! After STARTTLS the session is encrypted: relayed, not recorded.

use crate::config::Config;
use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One thing the client sent that waits for its reply.
enum Sent {
    Connect,
    Line(String),
    Message(Vec<String>),
}

/// The transcript so far, and what the two byte streams hold undecoded.
struct Recording {
    body: String,
    waiting: VecDeque<Sent>,
    client: Vec<u8>,
    server: Vec<u8>,
    /// After a 354: client lines are message content, up to ".".
    message: Option<Vec<String>>,
    /// STARTTLS went through: the rest is ciphertext.
    encrypted: bool,
    /// Local recipients the server accepted and users who logged in with
    /// AUTH PLAIN: replay needs their accounts.
    accounts: Vec<(String, Option<String>)>,
}

/// Records one session between a client on `listen` and the server at
/// `to` into `out`; prints the address it listens on first.
pub async fn record(config: &Config, listen: SocketAddr, to: SocketAddr, out: &Path) -> Result<()> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("--listen {listen}"))?;
    println!("recording: listening on {}, relaying to {to}", listener.local_addr()?);
    let (mut client, peer) = listener.accept().await?;
    let mut server = TcpStream::connect(to).await.with_context(|| format!("--to {to}"))?;
    let seen_as = server.local_addr()?.ip();
    let mut rec = Recording {
        body: String::new(),
        waiting: VecDeque::from([Sent::Connect]),
        client: Vec::new(),
        server: Vec::new(),
        message: None,
        encrypted: false,
        accounts: Vec::new(),
    };
    let (mut cbuf, mut sbuf) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        tokio::select! {
            n = client.read(&mut cbuf) => {
                let n = n.unwrap_or(0);
                if n == 0 { break; }
                server.write_all(&cbuf[..n]).await?;
                rec.client_sent(&cbuf[..n]);
            }
            n = server.read(&mut sbuf) => {
                let n = n.unwrap_or(0);
                if n == 0 { break; }
                client.write_all(&sbuf[..n]).await?;
                rec.server_sent(&sbuf[..n], config);
            }
        }
    }
    let _ = client.shutdown().await;
    let mut text = String::new();
    let _ = writeln!(text, "# Recorded by `ferrymail plugin test --record`: a session of {peer} with {to}.");
    let _ = writeln!(
        text,
        "# Replay: ferrymail plugin test PLUGIN.wasm --transcript {} --config SERVER.toml",
        out.display()
    );
    let _ = writeln!(text, "# Add the setup lines it needs beyond these (dns, config; see docs/plugin-test.md).");
    let _ = writeln!(text, "client {seen_as}");
    for (address, password) in &rec.accounts {
        match password {
            Some(p) => _ = writeln!(text, "account {address} {p}"),
            None => _ = writeln!(text, "account {address}"),
        }
    }
    text.push('\n');
    text.push_str(&rec.body);
    if rec.encrypted {
        text.push_str("# STARTTLS: the rest of the session was encrypted and is not recorded\n");
    }
    std::fs::write(out, text).with_context(|| format!("--record {}", out.display()))?;
    println!("recording: wrote {}", out.display());
    Ok(())
}

impl Recording {
    fn client_sent(&mut self, bytes: &[u8]) {
        if self.encrypted {
            return;
        }
        self.client.extend_from_slice(bytes);
        while let Some(at) = self.client.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.client.drain(..=at).collect();
            let line = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            match &mut self.message {
                Some(lines) if line == "." => {
                    let lines = std::mem::take(lines);
                    self.message = None;
                    self.waiting.push_back(Sent::Message(lines));
                }
                // RFC 5321 4.5.2: a leading dot was doubled on the wire.
                Some(lines) => lines.push(line.strip_prefix('.').map_or(line.clone(), str::to_string)),
                None => self.waiting.push_back(Sent::Line(line)),
            }
        }
    }

    fn server_sent(&mut self, bytes: &[u8], config: &Config) {
        if self.encrypted {
            return;
        }
        self.server.extend_from_slice(bytes);
        while let Some(reply) = self.next_reply() {
            let sent = self.waiting.pop_front();
            let code: u16 = reply.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            match &sent {
                Some(Sent::Connect) | None => {}
                Some(Sent::Line(line)) => {
                    let _ = writeln!(self.body, "> {line}");
                    self.note_account(line, code, config);
                }
                Some(Sent::Message(lines)) => {
                    let marker = end_marker(lines);
                    let _ = writeln!(self.body, "message <<{marker}");
                    for l in lines {
                        let _ = writeln!(self.body, "{l}");
                    }
                    let _ = writeln!(self.body, "{marker}");
                }
            }
            let _ = writeln!(self.body, "< {}", expectation(&reply, code));
            if code == 354 {
                self.message = Some(Vec::new());
            }
            if code == 220 && matches!(&sent, Some(Sent::Line(l)) if l.eq_ignore_ascii_case("STARTTLS")) {
                self.encrypted = true;
                return;
            }
        }
    }

    /// The last line of the next complete reply (RFC 5321 4.2.1).
    fn next_reply(&mut self) -> Option<String> {
        let mut end = 0;
        loop {
            let nl = self.server[end..].iter().position(|&b| b == b'\n')? + end;
            let line = &self.server[end..nl];
            end = nl + 1;
            if line.get(3) != Some(&b'-') {
                let last = String::from_utf8_lossy(line).trim_end_matches('\r').to_string();
                self.server.drain(..end);
                return Some(last);
            }
        }
    }

    fn note_account(&mut self, line: &str, code: u16, config: &Config) {
        let upper = line.to_ascii_uppercase();
        if code == 250
            && let Some(arg) = upper.strip_prefix("RCPT TO:").map(|_| &line[8..])
        {
            let address = arg.trim().trim_start_matches('<').split('>').next().unwrap_or("").to_string();
            let local = address.rsplit_once('@').is_some_and(|(_, d)| config.is_local_domain(d));
            if local && !self.accounts.iter().any(|(a, _)| a.eq_ignore_ascii_case(&address)) {
                self.accounts.push((address, None));
            }
        }
        if code == 235
            && let Some(b64) = upper.strip_prefix("AUTH PLAIN ").map(|_| line[11..].trim())
            && let Some((user, password)) = plain_credentials(b64)
        {
            self.accounts.retain(|(a, _)| !a.eq_ignore_ascii_case(&user));
            self.accounts.push((user, Some(password)));
        }
    }
}

/// AUTH PLAIN's initial response (RFC 4616): authzid NUL authcid NUL passwd.
fn plain_credentials(b64: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let mut parts = raw.split(|&b| b == 0);
    let (_, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    let password = String::from_utf8(password.to_vec()).ok()?;
    // A transcript's `account` line cannot hold a blank in a password.
    (!password.contains(char::is_whitespace)).then(|| (String::from_utf8_lossy(user).into_owned(), password))
}

/// The `<` line for a reply: code and enhanced code, and the text of a
/// refusal.
fn expectation(last: &str, code: u16) -> String {
    let rest = last.get(4..).unwrap_or("").trim();
    let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
    let (enhanced, text) = match super::transcript::is_enhanced(first) {
        true => (Some(first), after),
        false => (None, rest),
    };
    let mut out = code.to_string();
    if let Some(e) = enhanced {
        let _ = write!(out, " {e}");
    }
    if code >= 400 && !text.is_empty() {
        let _ = write!(out, " {text}");
    }
    out
}

/// `EOF`, or a marker no line of the message equals.
fn end_marker(lines: &[String]) -> String {
    (0..)
        .map(|i| if i == 0 { "EOF".to_string() } else { format!("EOF{i}") })
        .find(|m| !lines.iter().any(|l| l.trim_end() == m))
        .expect("some marker is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Recording {
        Recording {
            body: String::new(),
            waiting: VecDeque::from([Sent::Connect]),
            client: Vec::new(),
            server: Vec::new(),
            message: None,
            encrypted: false,
            accounts: Vec::new(),
        }
    }

    #[test]
    fn pipelined_commands_pair_with_their_replies_in_order() {
        let config = Config::load(None).unwrap();
        let mut r = rec();
        r.server_sent(b"220 mx ready\r\n", &config);
        // RFC 2920: MAIL and RCPT sent together, the replies later.
        r.client_sent(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@localhost>\r\nRCPT TO:<c@y.test>\r\n");
        r.server_sent(b"250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n554 5.7.1 <c@y.test>: Relay", &config);
        r.server_sent(b" access denied\r\n", &config);
        r.client_sent(b"DATA\r\n");
        r.server_sent(b"354 End data with <CR><LF>.<CR><LF>\r\n", &config);
        r.client_sent(b"Subject: x\r\n\r\n..dot\r\nEOF\r\n.\r\n");
        r.server_sent(b"250 2.0.0 Ok: queued as 00ab\r\n", &config);
        assert_eq!(
            r.body,
            "< 220\n> MAIL FROM:<a@x.test>\n< 250 2.1.0\n> RCPT TO:<b@localhost>\n< 250 2.1.5\n\
             > RCPT TO:<c@y.test>\n< 554 5.7.1 <c@y.test>: Relay access denied\n> DATA\n< 354\n\
             message <<EOF1\nSubject: x\n\n.dot\nEOF\nEOF1\n< 250 2.0.0\n"
        );
        assert_eq!(r.accounts, [("b@localhost".to_string(), None)]);
    }

    #[test]
    fn multi_line_replies_and_auth_plain() {
        let config = Config::load(None).unwrap();
        let mut r = rec();
        r.server_sent(b"220 mx\r\n", &config);
        r.client_sent(b"EHLO c\r\nAUTH PLAIN AGFsaWNlQGxvY2FsaG9zdABzM2NyZXQ=\r\n");
        r.server_sent(
            b"250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n235 2.7.0 Authentication successful\r\n",
            &config,
        );
        assert_eq!(r.body, "< 220\n> EHLO c\n< 250\n> AUTH PLAIN AGFsaWNlQGxvY2FsaG9zdABzM2NyZXQ=\n< 235 2.7.0\n");
        assert_eq!(r.accounts, [("alice@localhost".to_string(), Some("s3cret".to_string()))]);
    }
}
