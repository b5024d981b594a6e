//! The IMAP listener (RFC 3501): drives the sans-IO session, runs its store
//! requests (`store_ops`) and feeds it the selected mailbox's changes.

mod recent;
mod seat;
mod store_ops;

pub use recent::RecentMarks;
pub use store_ops::summarize;

use crate::config::ImapListener;
use crate::listener::Spec;
use crate::net::{Conn, Read, WriteError};
use crate::state::ServerState;
use crate::throttle::Login;
use crate::throttle::login::Credentials;
use ferrymail_policy::{Service, SessionInfo, SharedPolicy, logsafe};
use ferrymail_proto::imap::{ImapConfig, ImapEvent, ImapSession, LoginDone, MailboxChange};
use ferrymail_store::ChangeFeed;
use ferrymail_store::schema::ChangeKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves IMAP on `listener`; with `implicit_tls`, TLS from the first byte
/// (imaps, port 993, RFC 8314: pass `true` for an `[imaps]` listener).
pub async fn serve(
    state: Arc<ServerState>,
    limits: ImapListener,
    listener: TcpListener,
    implicit_tls: bool,
    shutdown: watch::Receiver<bool>,
) {
    let spec = Spec {
        name: if implicit_tls { "imaps" } else { "imap" },
        max_sessions: limits.max_sessions,
        implicit_tls,
        busy: b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
        client_busy: b"* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n",
    };
    let session_state = state.clone();
    crate::listener::serve(state, spec, listener, shutdown, move |conn, peer| {
        Driver::new(session_state.clone(), limits.clone(), conn, peer).run()
    })
    .await
}

/// The logged-in account, its change feed and its seat.
struct Account {
    id: u64,
    feed: ChangeFeed,
    _seat: seat::Seat,
}

struct Driver {
    state: Arc<ServerState>,
    policy: SharedPolicy,
    limits: ImapListener,
    conn: Conn,
    session: ImapSession,
    account: Option<Account>,
}

impl Driver {
    fn new(state: Arc<ServerState>, limits: ImapListener, conn: Conn, peer: SocketAddr) -> Self {
        let mut info = SessionInfo::new(state.next_session_id(), Service::Imap, peer.ip(), peer.port());
        info.tls = conn.is_tls();
        let config = &state.config;
        let cfg = ImapConfig {
            greeting_host: config.hostname.clone(),
            max_line: limits.max_command_line,
            max_literal: limits.max_literal_size,
            max_errors: limits.max_errors,
            starttls_available: state.tls().is_some() && !info.tls,
            plaintext_auth: config.tls.allow_plaintext_auth.allows(info.client_ip),
            idle_timeout: limits.idle_timeout,
            tls_timeout: config.tls.handshake_timeout,
            ..ImapConfig::default()
        };
        Driver { policy: state.policy(), session: ImapSession::new(cfg, info), state, limits, conn, account: None }
    }

    async fn run(mut self) {
        let info = self.session.info().clone();
        tracing::info!(session = %info.id, service = "imap", client = %info.client_ip, tls = info.tls, "connect");
        // The connect hook decides before the greeting, as for SMTP.
        let verdict = self.policy.connect(&info).await;
        if let Some(reply) = verdict.reply() {
            tracing::info!(session = %info.id, reply = %logsafe(&reply.to_string()), "refused at connect");
            let text = reply.text.replace(['\r', '\n'], " ");
            self.session.take_output();
            self.conn.farewell(format!("* BYE {text}\r\n").as_bytes()).await;
            return;
        }
        let why = match self.serve().await {
            Ok(()) if self.session.timed_out() => "timeout".to_string(),
            Ok(()) => "closed".to_string(),
            Err(e) => e.to_string(),
        };
        self.conn.farewell(&self.session.take_output()).await;
        tracing::info!(session = %self.session.info().id, reason = %why, "disconnect");
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        loop {
            let event = self.session.next_event(Instant::now());
            if matches!(event, ImapEvent::NeedInput | ImapEvent::Flush | ImapEvent::StartTls) {
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
                ImapEvent::NeedInput => {
                    let deadline = self.session.poll_timeout();
                    let selected = self.session.selected();
                    let read = match (&mut self.account, selected) {
                        // With a mailbox selected, a change wakes the session
                        // too (IDLE hears of new mail at once).
                        (Some(account), Some(_)) => tokio::select! {
                            r = self.conn.read_to(deadline, |bytes| self.session.feed(bytes)) => r,
                            change = account.feed.next() => {
                                let change = change.map_err(|_| ());
                                self.apply_change(change).await;
                                continue;
                            }
                        },
                        _ => self.conn.read_to(deadline, |bytes| self.session.feed(bytes)).await,
                    };
                    match read {
                        Read::Data(_) => {
                            // A change made before this command arrived is
                            // reported with it (the select above may have
                            // taken the bytes first).
                            self.drain_changes().await;
                        }
                        Read::Closed => return Ok(()),
                        Read::TimedOut => self.session.handle_timeout(crate::net::timed_out_at(deadline)),
                        Read::Failed(e) => return Err(e),
                    }
                }
                ImapEvent::Flush => {}
                ImapEvent::Login { user, password, mechanism } => {
                    let done = self.login(user, password, mechanism).await;
                    self.session.login_done(done);
                }
                ImapEvent::Request(request) => {
                    let Some(account) = self.account.as_ref().map(|a| a.id) else { return Ok(()) };
                    let answer = store_ops::run(&self.state, account, request, self.session.info()).await;
                    // Changes the request made (an APPEND or COPY into the
                    // selected mailbox) are known before the command ends.
                    self.drain_changes().await;
                    self.session.answer(answer);
                }
                ImapEvent::StartTls => {
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
                ImapEvent::Close => return Ok(()),
            }
        }
    }

    /// Every change already announced, without waiting.
    async fn drain_changes(&mut self) {
        loop {
            let Some(account) = self.account.as_mut() else { return };
            let Some(change) = account.feed.try_next() else { return };
            self.apply_change(change.map_err(|_| ())).await;
        }
    }

    /// Tells the session of a change to its selected mailbox; after a lag,
    /// of the mailbox's whole UID list.
    async fn apply_change(&mut self, change: Result<ferrymail_store::schema::Change, ()>) {
        let (Some(selected), Some(account)) = (self.session.selected(), self.account.as_ref()) else { return };
        let change = match change {
            Ok(c) if c.mailbox != selected => return,
            Ok(c) => match c.kind {
                ChangeKind::Appended { uid, .. } => {
                    let claim = self.session.selected_read_write();
                    let recent = claim && self.state.imap_recent.at_arrival(account.id, selected, uid);
                    MailboxChange::Appended { uid, recent }
                }
                ChangeKind::Expunged { uids, .. } => MailboxChange::Expunged { uids },
                ChangeKind::Flags(update) => {
                    MailboxChange::Flags { uid: update.uid, flags: store_ops::flags_of(update.flags, update.keywords) }
                }
                ChangeKind::Mailboxes => return,
            },
            Err(()) => match self.state.store.uids(account.id, selected).await {
                Ok(uids) => MailboxChange::Resync { uids: uids.iter().collect() },
                Err(e) => {
                    tracing::warn!(session = %self.session.info().id, error = %e, "re-reading the mailbox failed");
                    return;
                }
            },
        };
        self.session.mailbox_changed(change);
    }

    async fn login(&mut self, user: String, password: String, mechanism: String) -> LoginDone {
        let info = self.session.info();
        let username = crate::policy::qualify(&user, &self.state.config);
        // Failures are counted with SMTP's and POP3's (crate::throttle):
        // too many lately, and the password is not even checked.
        let done = |login| match login {
            Login::Fail => LoginDone::Fail,
            _ => LoginDone::Tempfail,
        };
        let credentials = Credentials { mechanism, login: &user, username, password };
        let (account, tenant) =
            match crate::throttle::login::mailbox_login("imap", &self.state, &*self.policy, info, credentials).await {
                Ok(found) => found,
                Err(other) => return done(other),
            };
        let Some(seat) = seat::Seat::take(&self.state, account.id, self.limits.max_sessions_per_user) else {
            tracing::warn!(session = %info.id, user = %logsafe(&account.address), "too many sessions for this user");
            return LoginDone::Limit;
        };
        tracing::info!(session = %info.id, user = %logsafe(&account.address), "login");
        let feed = self.state.store.watch(account.id);
        self.account = Some(Account { id: account.id, feed, _seat: seat });
        LoginDone::Ok { user: account.address, tenant }
    }
}
