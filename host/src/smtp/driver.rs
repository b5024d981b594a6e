//! Drives one SMTP session: moves bytes between the socket and the sans-IO
//! state machine, runs the timer it asks for, and answers its decision
//! events from the policy, the delivery agent and TLS. Protocol facts
//! (helo, TLS, the AUTH user) live in the session; nothing is decided here.

use crate::config::SmtpListener;
use crate::net::{Conn, Read, WriteError};
use crate::state::ServerState;
use crate::throttle::Login;
use crate::throttle::login::Credentials;
use ferrymail_policy::{Reply, SessionInfo, SharedPolicy, Verdict, logsafe};
use ferrymail_proto::smtp::{AuthResult, Ending, SmtpConfig, SmtpEvent, SmtpSession};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Driver {
    state: Arc<ServerState>,
    policy: SharedPolicy,
    session: SmtpSession,
    conn: Conn,
}

/// Why the connection ended, beside the session's own reasons.
enum End {
    Session,
    ClientClosed,
    Io(std::io::Error),
    TlsFailed(std::io::Error),
}

/// The session settings of one listener for one client.
pub fn session_config(state: &ServerState, limits: &SmtpListener, info: &SessionInfo) -> SmtpConfig {
    let config = &state.config;
    // Postfix's postscreen spares mynetworks the same way: clients we
    // relay for are ours, and need no pregreet test.
    let greet_delay = if config.may_relay(info.client_ip) { Duration::ZERO } else { limits.greet_delay };
    SmtpConfig {
        hostname: config.hostname.clone(),
        max_command_line: limits.max_command_line,
        max_text_line: limits.max_text_line,
        max_message_size: limits.max_message_size,
        max_recipients: limits.max_recipients,
        max_errors: limits.max_errors,
        soft_error_limit: limits.soft_error_limit,
        error_delay: limits.error_delay,
        starttls: state.tls().is_some() && !info.tls,
        auth: true,
        auth_without_tls: config.tls.allow_plaintext_auth.allows(info.client_ip),
        require_auth: limits.require_auth,
        // RFC 5321 4.5.1: bare RCPT TO:<Postmaster> is our first domain's.
        postmaster: Some(crate::policy::qualify("postmaster", config)),
        max_hops: config.max_hops,
        command_timeout: limits.command_timeout,
        data_timeout: limits.data_timeout,
        tls_timeout: config.tls.handshake_timeout,
        greet_delay,
    }
}

impl Driver {
    pub fn new(state: Arc<ServerState>, cfg: SmtpConfig, policy: SharedPolicy, info: SessionInfo, conn: Conn) -> Self {
        Driver { session: SmtpSession::new(cfg, info), state, policy, conn }
    }

    pub async fn run(mut self) {
        let end = self.serve().await;
        // Milter connections of this session say goodbye.
        self.policy.end(self.session.info()).await;
        let last = self.session.take_output();
        crate::metrics::smtp::replies(self.session.info().service.as_str(), &last);
        Box::pin(self.conn.farewell(&last)).await;
        let how = match &end {
            End::Session => "closed by the server",
            End::ClientClosed => "client closed",
            End::Io(_) => "I/O error",
            End::TlsFailed(_) => "TLS handshake failed",
        };
        let id = &self.session.info().id;
        match (end, self.session.ending()) {
            (End::Session, Some(Ending::Quit)) => tracing::info!(session = %id, "disconnect (QUIT)"),
            (End::Session, Some(Ending::Timeout)) => tracing::info!(session = %id, "disconnect (timeout)"),
            (End::Session, Some(Ending::TlsTimeout)) => {
                tracing::info!(session = %id, "disconnect (TLS handshake timed out)")
            }
            (End::Session, Some(Ending::TooManyErrors)) => {
                tracing::info!(session = %id, client = %self.session.info().client_ip, "disconnect (too many errors)")
            }
            (End::Session, Some(Ending::Pregreet)) => {
                // One stable line per offender, for fail2ban.
                tracing::warn!(client = %self.session.info().client_ip, session = %id, "pregreet: client talked before the greeting")
            }
            (End::Session, Some(Ending::Refused)) => tracing::info!(session = %id, "disconnect (refused at connect)"),
            (End::Session, _) => tracing::info!(session = %id, "disconnect (policy)"),
            (End::ClientClosed, _) => tracing::info!(session = %id, "disconnect (client closed)"),
            (End::Io(e), _) => tracing::info!(session = %id, error = %e, "disconnect (I/O error)"),
            (End::TlsFailed(e), _) => tracing::info!(session = %id, error = %e, "disconnect (TLS handshake failed)"),
        }
        crate::trace::save_session_end(&*self.state.store, &self.state.config.trace, how);
    }

    /// The session's state machine lives as long as the connection, idle
    /// or not, so what it holds across the read is what every connection
    /// costs: the rare, large steps (a message's acceptance with its
    /// authentication checks and store commit, a TLS handshake, a login)
    /// are boxed, so their state exists only while they run. Without that
    /// the session future was 16 KiB, now 2.8 KiB; `a_session_future_is_small`
    /// keeps it so.
    async fn serve(&mut self) -> End {
        loop {
            let event = self.session.next_event(Instant::now());
            // Output goes out before the session waits on the client (a
            // read, a pause, a handshake), under the deadline it armed for
            // that: never unbounded, never behind a policy call.
            if matches!(event, SmtpEvent::NeedInput | SmtpEvent::Pause(_) | SmtpEvent::StartTls)
                && let Err(end) = self.flush().await
            {
                match end {
                    Some(end) => return end,
                    None => continue,
                }
            }
            match event {
                SmtpEvent::NeedInput => {
                    match self.conn.read_to(self.session.poll_timeout(), |bytes| self.session.feed(bytes)).await {
                        Read::Data(_) => {}
                        Read::Closed => return End::ClientClosed,
                        Read::TimedOut => {
                            self.session.handle_timeout(crate::net::timed_out_at(self.session.poll_timeout()))
                        }
                        Read::Failed(e) => return End::Io(e),
                    }
                }
                SmtpEvent::Pause(until) => tokio::time::sleep_until(until.into()).await,
                SmtpEvent::Close => return End::Session,
                SmtpEvent::Connect => {
                    let info = self.session.info();
                    let verdict = self.policy.connect(info).await;
                    if let Some(reply) = verdict.reply() {
                        tracing::info!(session = %info.id, reply = %logsafe(&reply.to_string()), "refused at connect");
                    }
                    crate::trace::command(
                        "connect",
                        &info.client_ip.to_string(),
                        verdict.reply().map(|r| r.to_string()).as_deref(),
                    );
                    self.session.verdict(verdict);
                }
                SmtpEvent::Helo { name, ehlo } => {
                    let verdict = self.policy.helo(self.session.info(), &name, ehlo).await;
                    log_verdict(self.session.info(), if ehlo { "ehlo" } else { "helo" }, &name, &verdict);
                    self.session.verdict(verdict);
                }
                SmtpEvent::Mail { from, .. } => {
                    let verdict = self.policy.mail(self.session.info(), &from).await;
                    log_verdict(self.session.info(), "mail", &from, &verdict);
                    self.session.verdict(verdict);
                }
                SmtpEvent::Rcpt { to } => {
                    let mut verdict = self.policy.rcpt(self.session.info(), &self.session.envelope(), &to).await;
                    // RFC 5321 4.5.1: postmaster at our domains is always
                    // accepted (routing finds it a mailbox); a temporary
                    // refusal (a busy plugin, another tenant's transaction) stands.
                    if matches!(verdict, Verdict::Reject(_) | Verdict::Continue) && self.state.config.is_postmaster(&to)
                    {
                        tracing::info!(session = %self.session.info().id, rcpt = %to, "postmaster: accepted (RFC 5321 4.5.1)");
                        verdict = Verdict::Accept;
                    }
                    log_verdict(self.session.info(), "rcpt", &to, &verdict);
                    if verdict.reply().and_then(|r| r.enhanced.as_deref()) == Some("5.1.1") {
                        // Probing for addresses: each unknown recipient
                        // past the free ones costs the address more time.
                        let delay = self.state.failures.unknown_recipient(self.session.info().client_ip);
                        tokio::time::sleep(delay).await;
                    }
                    self.session.verdict(verdict);
                }
                SmtpEvent::Vrfy(arg) => {
                    let reply = self.policy.vrfy(self.session.info(), &arg).await;
                    self.session.reply(reply);
                }
                SmtpEvent::Expn(arg) => {
                    let reply = self.policy.expn(self.session.info(), &arg).await;
                    self.session.reply(reply);
                }
                SmtpEvent::Message(content) => {
                    let reply = Box::pin(self.accept(content)).await;
                    crate::trace::message_done(&*self.state.store, &self.state.config.trace);
                    self.session.reply(reply);
                }
                SmtpEvent::StartTls => {
                    if let Err(end) = Box::pin(self.starttls()).await {
                        return end;
                    }
                }
                SmtpEvent::Auth { mechanism, username, password } => {
                    let result = Box::pin(self.auth(mechanism, username, password)).await;
                    self.session.auth_result(result);
                }
            }
        }
    }

    /// Writes the pending output under the session's deadline. `Err(None)`:
    /// the deadline passed and the session was told; `Err(Some(end))`: the
    /// connection is gone.
    async fn flush(&mut self) -> Result<(), Option<End>> {
        let out = self.session.take_output();
        crate::metrics::smtp::replies(self.session.info().service.as_str(), &out);
        match self.conn.write_before(&out, self.session.poll_timeout()).await {
            Ok(()) => Ok(()),
            Err(WriteError::TimedOut) => {
                self.session.handle_timeout(crate::net::timed_out_at(self.session.poll_timeout()));
                Err(None)
            }
            Err(WriteError::Failed(e)) => Err(Some(End::Io(e))),
        }
    }

    async fn accept(&mut self, content: Vec<u8>) -> Reply {
        let envelope = self.session.envelope();
        let info = self.session.info();
        let id = match self.state.delivery.new_id().await {
            Ok(id) => id,
            Err(reply) => return reply,
        };
        let msg = ferrymail_store::format_id(id);
        // The chain sees our Authentication-Results, so its `dmarc` plugin can decide.
        let content = crate::mailauth::authenticate(&self.state, info, &envelope, content, &msg).await;
        let decision = self.policy.data(info, &envelope, &content).await;
        let (store, trace) = (&*self.state.store, &self.state.config.trace);
        let service = info.service.as_str();
        crate::metrics::smtp::received(service, content.len());
        if let Some(reply) = decision.verdict.reply() {
            tracing::info!(session = %info.id, msg = %msg, reply = %logsafe(&reply.to_string()), "message refused by policy");
            crate::metrics::smtp::message(service, reply.code);
            crate::trace::message_not_kept(store, trace, id, &format!("refused: {reply}"));
            return reply.clone();
        }
        if decision.discard {
            tracing::info!(session = %info.id, msg = %msg, "message discarded by policy");
            crate::metrics::smtp::message(service, 250);
            // Else its steps would run into the session's next record.
            crate::trace::message_not_kept(store, trace, id, "discarded by policy: 250 given, nothing kept");
            return Reply::new(250, "2.0.0", format!("Ok: queued as {msg}"));
        }
        // A milter's header edits, on the message as the chain saw it.
        let content = match decision.edits.is_empty() {
            true => content,
            false => ferrymail_policy::edits::apply(&content, &decision.edits),
        };
        let folder = crate::delivery::Folder::for_added_fields(decision.added_fields());
        let date = chrono::Utc::now().to_rfc2822();
        let mut full = self.session.trace_headers(&msg, &date, &decision.add_headers);
        full.reserve(content.len());
        full.extend_from_slice(&content);
        drop(content);
        // Last: nothing changes the content after this but Return-Path on read.
        crate::mailauth::sign_submission(&self.state.dkim, &self.state.config, info, &mut full, &msg);
        let size = full.len();
        let accepted =
            self.state.delivery.accept_into(self.policy.as_ref(), info, &envelope, id, full.into(), folder).await;
        crate::metrics::smtp::message(service, accepted.as_ref().map_or_else(|r| r.code, |_| 250));
        match accepted {
            Ok(receipt) => {
                tracing::info!(
                    session = %info.id, msg = %msg, from = %logsafe(&envelope.mail_from),
                    rcpts = envelope.rcpt_to.len(), size, local = receipt.local, queued = receipt.queued,
                    junk = folder == crate::delivery::Folder::Junk,
                    "accepted"
                );
                Reply::new(250, "2.0.0", format!("Ok: queued as {msg}"))
            }
            // Its trace says so (Delivery::accept_into).
            Err(reply) => reply,
        }
    }

    async fn starttls(&mut self) -> Result<(), End> {
        let Some(acceptor) = self.state.tls() else {
            return Err(End::TlsFailed(std::io::Error::other("no TLS acceptor")));
        };
        match crate::net::before(self.session.poll_timeout(), self.conn.accept_tls(&acceptor)).await {
            Some(Ok(())) => {
                self.session.tls_established();
                tracing::info!(session = %self.session.info().id, "starttls");
                Ok(())
            }
            Some(Err(e)) => Err(End::TlsFailed(e)),
            None => {
                self.session.handle_timeout(crate::net::timed_out_at(self.session.poll_timeout()));
                Err(End::Session)
            }
        }
    }

    /// A login, unless this client or account has failed too often
    /// lately (then 454 4.7.0 without checking the password).
    async fn auth(&mut self, mechanism: String, username: String, password: String) -> AuthResult {
        let info = self.session.info();
        let login = &username;
        match crate::throttle::login::login(
            "smtp",
            &self.state,
            &*self.policy,
            info,
            Credentials { mechanism, login, username: login.clone(), password },
        )
        .await
        {
            Login::Ok { user, tenant } => {
                tracing::info!(session = %info.id, user = %logsafe(&user), "auth ok");
                AuthResult::Ok { user, tenant }
            }
            Login::Fail => AuthResult::Fail,
            Login::Tempfail => AuthResult::Tempfail,
            Login::Refused => AuthResult::Refused,
        }
    }
}

fn log_verdict(info: &SessionInfo, stage: &str, address: &str, verdict: &Verdict) {
    crate::trace::command(stage, address, verdict.reply().map(|r| r.to_string()).as_deref());
    match verdict.reply() {
        None => tracing::info!(session = %info.id, stage, address = %logsafe(address), "ok"),
        Some(reply) => {
            tracing::info!(session = %info.id, stage, address = %logsafe(address), reply = %logsafe(&reply.to_string()), "refused")
        }
    }
}
