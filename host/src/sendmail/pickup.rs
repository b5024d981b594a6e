//! The server side of `sendmail`: a message from a local program, handed
//! over by the control socket (or left in `data_dir/maildrop` while no
//! server ran), enters the mail system like Postfix's pickup: no SMTP
//! session and so no connect/HELO/MAIL/RCPT hooks — the caller is a
//! trusted local user, as only the server's user and root can reach the
//! data directory — but the DATA hook judges the content and the `route`
//! hook routes each recipient, as for any message.

use crate::state::ServerState;
use base64::Engine;
use ferrymail_policy::{Envelope, Reply, Service, SessionInfo, logsafe};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One message from a local program, as the control socket and the
/// maildrop carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    pub sender: String,
    pub recipients: Vec<String>,
    /// The prepared message (sendmail::message), base64.
    pub content: String,
    /// Who handed it over: the peer's uid on the control socket, the
    /// file owner's in the maildrop (never what the client claims).
    #[serde(default)]
    pub uid: Option<u32>,
}

/// Why a submission was not taken.
#[derive(Debug)]
pub enum Refused {
    /// Try again later (the store is full, a plugin tempfailed).
    Temporary(String),
    /// Retrying will not help.
    Permanent(String),
}

impl Refused {
    fn from_reply(reply: &Reply) -> Refused {
        let text = reply.to_string().trim_end().to_string();
        if reply.code >= 500 { Refused::Permanent(text) } else { Refused::Temporary(text) }
    }
}

/// Validates, runs the DATA hook, adds our Received field and accepts the
/// message: durable when this returns Ok, with the queue id.
pub async fn submit(state: &ServerState, sub: &Submission) -> Result<String, Refused> {
    let content = base64::engine::general_purpose::STANDARD
        .decode(&sub.content)
        .map_err(|e| Refused::Permanent(format!("content is not base64: {e}")))?;
    let limit = state.config.submission.max_message_size;
    if content.len() > limit {
        return Err(Refused::Permanent(format!(
            "message of {} octets exceeds submission.max_message_size ({limit})",
            content.len()
        )));
    }
    if content.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n') || content.contains(&0) {
        return Err(Refused::Permanent("bare CR or NUL in the content".into()));
    }
    if !sub.sender.is_empty() {
        check_address(&sub.sender).map_err(|why| Refused::Permanent(format!("sender {:?}: {why}", sub.sender)))?;
    }
    if sub.recipients.is_empty() {
        return Err(Refused::Permanent("no recipients".into()));
    }
    for r in &sub.recipients {
        check_address(r).map_err(|why| Refused::Permanent(format!("recipient {r:?}: {why}")))?;
    }

    let uid = sub.uid.map_or_else(|| "unknown".to_string(), |u| u.to_string());
    let mut info = SessionInfo::new(
        format!("sendmail-{}", state.next_session_id()),
        Service::Submission,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        0,
    );
    info.helo = Some("localhost".into());
    let envelope = Envelope { mail_from: sub.sender.clone(), rcpt_to: sub.recipients.clone() };
    let policy = state.policy();
    let id = state.delivery.new_id().await.map_err(|r| Refused::from_reply(&r))?;
    let msg = ferrymail_store::format_id(id);
    let decision = policy.data(&info, &envelope, &content).await;
    policy.end(&info).await;
    if let Some(reply) = decision.verdict.reply() {
        tracing::info!(session = %info.id, msg = %msg, reply = %logsafe(&reply.to_string()), "local submission refused by policy");
        return Err(Refused::from_reply(reply));
    }
    if decision.discard {
        tracing::info!(session = %info.id, msg = %msg, "local submission discarded by policy");
        return Ok(msg);
    }
    // A milter's header edits (a signature, say), as for SMTP.
    let content = match decision.edits.is_empty() {
        true => content,
        false => ferrymail_policy::edits::apply(&content, &decision.edits),
    };
    // RFC 5321 4.4: the trace field of a local submission names the user.
    let mut full = format!(
        "Received: (from uid {uid})\r\n\tby {} (ferrymail sendmail) id {msg};\r\n\t{}\r\n",
        state.config.hostname,
        chrono::Utc::now().to_rfc2822()
    )
    .into_bytes();
    for (name, value) in &decision.add_headers {
        full.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    full.extend_from_slice(&content);
    match state.delivery.accept(policy.as_ref(), &info, &envelope, id, full.into()).await {
        Ok(receipt) => {
            tracing::info!(
                session = %info.id, msg = %msg, uid = %uid, from = %logsafe(&sub.sender),
                rcpts = sub.recipients.len(), local = receipt.local, queued = receipt.queued,
                "accepted from a local program"
            );
            Ok(msg)
        }
        Err(reply) => Err(Refused::from_reply(&reply)),
    }
}

/// RFC 5321 4.5.3.1 sizes and no characters that would break a command
/// line or a log; the full syntax is the receiving side's to judge.
fn check_address(address: &str) -> Result<(), &'static str> {
    let (local, domain) = address.rsplit_once('@').ok_or("not local@domain")?;
    if local.is_empty() || domain.is_empty() {
        return Err("not local@domain");
    }
    if local.len() > 64 {
        return Err("local part longer than 64 octets (RFC 5321 4.5.3.1.1)");
    }
    if domain.len() > 255 {
        return Err("domain longer than 255 octets (RFC 5321 4.5.3.1.2)");
    }
    if address.chars().any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>') {
        return Err("contains spaces, control characters or angle brackets");
    }
    Ok(())
}

/// Where `sendmail` leaves messages while no server runs.
pub fn maildrop_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("maildrop")
}

/// Submits what the maildrop holds, at start and then every few seconds
/// (a `sendmail` that found no server may have written just as the server
/// started). Taken or permanently refused files are removed — refused ones
/// after logging, with the reason, into `maildrop/refused/` for the
/// operator; temporarily refused ones stay for the next round.
pub async fn run_maildrop(state: std::sync::Arc<ServerState>) {
    let dir = maildrop_dir(&state.config.data_dir);
    loop {
        if let Err(e) = drain(&state, &dir).await {
            tracing::warn!(dir = %dir.display(), error = %e, "maildrop");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn drain(state: &ServerState, dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        // Files are written under a temporary name and renamed when synced.
        if path.extension().is_none_or(|e| e != "msg") {
            continue;
        }
        let owner = entry.metadata().await?.uid();
        let bytes = tokio::fs::read(&path).await?;
        let result = match serde_json::from_slice::<Submission>(&bytes) {
            Ok(mut sub) => {
                sub.uid = Some(owner);
                submit(state, &sub).await
            }
            Err(e) => Err(Refused::Permanent(format!("unreadable maildrop file: {e}"))),
        };
        match result {
            Ok(id) => {
                tracing::info!(file = %path.display(), msg = %id, "maildrop file submitted");
                tokio::fs::remove_file(&path).await?;
            }
            Err(Refused::Temporary(why)) => {
                tracing::warn!(file = %path.display(), reason = %logsafe(&why), "maildrop file deferred");
            }
            Err(Refused::Permanent(why)) => {
                tracing::error!(file = %path.display(), reason = %logsafe(&why), "maildrop file refused");
                let refused = dir.join("refused");
                tokio::fs::create_dir_all(&refused).await?;
                tokio::fs::rename(&path, refused.join(entry.file_name())).await?;
            }
        }
    }
    Ok(())
}
