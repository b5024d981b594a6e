//! The POP3 listener (RFC 1939): drives the sans-IO session against the
//! store, with one session per maildrop at a time.

mod lock;

use crate::config::Pop3Listener;
use crate::listener::Spec;
use crate::net::{Conn, Read, WriteError};
use crate::state::ServerState;
use crate::throttle::Login;
use crate::throttle::login::{Credentials, mailbox_login};
use ferrymail_policy::{Service, SessionInfo, SharedPolicy, logsafe};
use ferrymail_proto::pop3::{AuthDone, MaildropEntry, Pop3Config, Pop3Event, Pop3Session};
use ferrymail_store::schema::{INBOX_ID, MailEntry, UidSet};
use lock::MaildropLock;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves POP3 on `listener`; with `implicit_tls`, TLS from the first byte
/// (pop3s, port 995, RFC 8314).
pub async fn serve(
    state: Arc<ServerState>,
    limits: Pop3Listener,
    listener: TcpListener,
    implicit_tls: bool,
    shutdown: watch::Receiver<bool>,
) {
    let spec = Spec {
        name: if implicit_tls { "pop3s" } else { "pop3" },
        max_sessions: limits.max_sessions,
        implicit_tls,
        busy: b"-ERR [SYS/TEMP] too many connections, try again later\r\n",
        client_busy: b"-ERR [SYS/TEMP] too many connections from your address, try again later\r\n",
    };
    let session_state = state.clone();
    crate::listener::serve(state, spec, listener, shutdown, move |conn, peer| {
        Driver::new(session_state.clone(), limits.clone(), conn, peer).run()
    })
    .await
}

/// The maildrop of a logged-in session: fixed for the session (RFC 1939 5).
struct Maildrop {
    account: u64,
    entries: Vec<MailEntry>,
    _lock: MaildropLock,
}

struct Driver {
    state: Arc<ServerState>,
    policy: SharedPolicy,
    conn: Conn,
    session: Pop3Session,
    maildrop: Option<Maildrop>,
}

impl Driver {
    fn new(state: Arc<ServerState>, limits: Pop3Listener, conn: Conn, peer: SocketAddr) -> Self {
        let mut info = SessionInfo::new(state.next_session_id(), Service::Pop3, peer.ip(), peer.port());
        info.tls = conn.is_tls();
        let config = &state.config;
        let cfg = Pop3Config {
            greeting_host: config.hostname.clone(),
            max_line: limits.max_command_line,
            stls_available: state.tls().is_some() && !info.tls,
            plaintext_auth: config.tls.allow_plaintext_auth.allows(info.client_ip),
            idle_timeout: limits.idle_timeout,
            tls_timeout: config.tls.handshake_timeout,
            ..Pop3Config::default()
        };
        Driver { policy: state.policy(), session: Pop3Session::new(cfg, info), state, conn, maildrop: None }
    }

    async fn run(mut self) {
        let info = self.session.info();
        tracing::info!(session = %info.id, service = "pop3", client = %info.client_ip, tls = info.tls, "connect");
        let why = match self.serve().await {
            Ok(()) if self.session.timed_out() => "timeout".to_string(),
            Ok(()) => "closed".to_string(),
            Err(e) => e.to_string(),
        };
        self.conn.farewell(&self.session.take_output()).await;
        // Dropping the maildrop releases the lock; nothing was deleted
        // unless QUIT completed the UPDATE state.
        tracing::info!(session = %self.session.info().id, reason = %why, "disconnect");
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        loop {
            let event = self.session.next_event(Instant::now());
            // Output goes out before the session waits on the client, under
            // the deadline it armed: a client that stops reading a 20 MB
            // RETR times out like one that stops writing.
            if matches!(event, Pop3Event::NeedInput | Pop3Event::Flush | Pop3Event::StartTls) {
                let out = self.session.take_output();
                match self.conn.write_before(&out, self.session.poll_timeout()).await {
                    Ok(()) => {}
                    Err(WriteError::TimedOut) => {
                        self.session.handle_timeout(crate::net::timed_out_at(self.session.poll_timeout()));
                        continue;
                    }
                    Err(WriteError::Failed(e)) => return Err(e),
                }
            }
            match event {
                Pop3Event::NeedInput => {
                    match self.conn.read_to(self.session.poll_timeout(), |bytes| self.session.feed(bytes)).await {
                        Read::Data(_) => {}
                        Read::Closed => return Ok(()),
                        Read::TimedOut => {
                            self.session.handle_timeout(crate::net::timed_out_at(self.session.poll_timeout()))
                        }
                        Read::Failed(e) => return Err(e),
                    }
                }
                Pop3Event::Flush => {}
                Pop3Event::AuthRequested { user, password, mechanism } => {
                    let done = self.login(user, password, mechanism).await;
                    self.session.auth_done(done);
                }
                Pop3Event::MessageNeeded { index, .. } => {
                    let entry = self.maildrop.as_ref().and_then(|m| m.entries.get(index));
                    let content = match entry {
                        Some(e) => Some(self.state.store.read_message(e).await),
                        None => None,
                    };
                    match content {
                        Some(Ok(bytes)) => self.session.message_ready(&bytes),
                        Some(Err(e)) => {
                            tracing::error!(session = %self.session.info().id, error = %e, "reading message failed");
                            self.session.message_unavailable();
                        }
                        None => self.session.message_unavailable(),
                    }
                }
                Pop3Event::UpdateRequested { delete } => {
                    let ok = self.update(&delete).await;
                    self.session.update_done(ok);
                }
                Pop3Event::StartTls => {
                    let Some(acceptor) = self.state.tls() else { return Ok(()) };
                    match crate::net::before(self.session.poll_timeout(), self.conn.accept_tls(&acceptor)).await {
                        Some(result) => result?,
                        None => {
                            self.session.handle_timeout(crate::net::timed_out_at(self.session.poll_timeout()));
                            continue;
                        }
                    }
                    self.session.tls_established();
                }
                Pop3Event::Close => return Ok(()),
            }
        }
    }

    async fn login(&mut self, user: String, password: String, mechanism: String) -> AuthDone {
        let info = self.session.info();
        let username = crate::policy::qualify(&user, &self.state.config);
        let done = |login| match login {
            Login::Fail => AuthDone::Fail,
            Login::Tempfail => AuthDone::Tempfail,
            // -ERR [SYS/TEMP] without checking the password.
            _ => AuthDone::Refused,
        };
        let credentials = Credentials { mechanism, login: &user, username, password };
        let (account, tenant) = match mailbox_login("pop3", &self.state, &*self.policy, info, credentials).await {
            Ok(found) => found,
            Err(other) => return done(other),
        };
        let Some(lock) = MaildropLock::acquire(&self.state, account.id) else {
            tracing::info!(session = %info.id, user = %logsafe(&account.address), "maildrop in use");
            return AuthDone::InUse;
        };
        let entries = match self.state.store.all_entries(account.id, INBOX_ID).await {
            Ok(e) => e,
            Err(_) => return AuthDone::Tempfail,
        };
        let uid_validity = match self.state.store.mailbox_by_id(account.id, INBOX_ID).await {
            Ok(Some(inbox)) => inbox.uid_validity,
            Ok(None) => return AuthDone::Fail,
            Err(_) => return AuthDone::Tempfail,
        };
        let maildrop = entries
            .iter()
            // The unique-id survives sessions and never repeats (RFC 1939 7 UIDL).
            .map(|e| MaildropEntry { uid: format!("{uid_validity:08x}{:08x}", e.uid), size: e.size })
            .collect();
        tracing::info!(session = %info.id, user = %logsafe(&account.address), messages = entries.len(), "login");
        self.maildrop = Some(Maildrop { account: account.id, entries, _lock: lock });
        AuthDone::Ok { maildrop, user: account.address, tenant }
    }

    async fn update(&mut self, delete: &[usize]) -> bool {
        let Some(m) = &self.maildrop else { return false };
        let uids: UidSet = delete.iter().filter_map(|&i| m.entries.get(i)).map(|e| e.uid).collect();
        if uids.is_empty() {
            return true;
        }
        // Durable on return; IMAP sessions on the mailbox hear of it as EXPUNGE.
        match self.state.store.expunge(m.account, INBOX_ID, &uids).await {
            Ok(removed) => {
                tracing::info!(session = %self.session.info().id, deleted = removed.len(), "update");
                true
            }
            Err(e) => {
                tracing::error!(session = %self.session.info().id, error = %e, "update failed");
                false
            }
        }
    }
}
