//! Drives one SMTP session: moves bytes between the socket and the sans-IO
//! state machine, and answers its decision events from the policy, the
//! delivery agent and TLS.

use super::received;
use crate::config::SmtpListener;
use crate::net::Conn;
use crate::state::ServerState;
use ferrymail_policy::{AuthOutcome, AuthRequest, Reply, SessionInfo, SharedPolicy, Verdict};
use ferrymail_proto::smtp::{AuthResult, SmtpConfig, SmtpEvent, SmtpSession, Waiting};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Driver {
    state: Arc<ServerState>,
    limits: SmtpListener,
    policy: SharedPolicy,
    info: SessionInfo,
    session: SmtpSession,
    conn: Conn,
}

/// Why a session ended, for the log line.
enum End {
    Quit,
    ClientClosed,
    Timeout,
    Io(std::io::Error),
    TlsFailed(std::io::Error),
}

impl Driver {
    pub fn new(
        state: Arc<ServerState>,
        limits: SmtpListener,
        policy: SharedPolicy,
        info: SessionInfo,
        conn: Conn,
    ) -> Self {
        let cfg = SmtpConfig {
            hostname: state.config.hostname.clone(),
            max_command_line: limits.max_command_line,
            max_text_line: limits.max_text_line,
            max_message_size: limits.max_message_size,
            max_recipients: limits.max_recipients,
            max_errors: limits.max_errors,
            starttls: state.tls.is_some(),
            auth: true,
            auth_without_tls: state.config.tls.allow_plaintext_auth.allows(info.client_ip),
            require_auth: limits.require_auth,
            // RFC 5321 4.5.1: bare RCPT TO:<Postmaster> is our first domain's.
            postmaster: Some(crate::policy::native::qualify("postmaster", &state.config)),
        };
        Driver { session: SmtpSession::new(cfg), state, limits, policy, info, conn }
    }

    pub async fn run(mut self) {
        let end = self.serve().await;
        let _ = self.conn.write_all(&self.session.take_output()).await;
        let _ = self.conn.shutdown().await;
        let id = &self.info.id;
        match end {
            End::Quit => tracing::info!(session = %id, "disconnect (QUIT)"),
            End::ClientClosed => tracing::info!(session = %id, "disconnect (client closed)"),
            End::Timeout => tracing::info!(session = %id, "disconnect (timeout)"),
            End::Io(e) => tracing::info!(session = %id, error = %e, "disconnect (I/O error)"),
            End::TlsFailed(e) => tracing::info!(session = %id, error = %e, "disconnect (TLS handshake failed)"),
        }
    }

    async fn serve(&mut self) -> End {
        let mut buf = vec![0u8; crate::net::READ_CHUNK];
        loop {
            if let Some(end) = self.handle_events().await {
                return end;
            }
            let out = self.session.take_output();
            if !out.is_empty()
                && let Err(e) = self.conn.write_all(&out).await
            {
                return End::Io(e);
            }
            let timeout = match self.session.waiting() {
                Waiting::Command => self.limits.command_timeout,
                Waiting::Data => self.limits.data_timeout,
            };
            match tokio::time::timeout(timeout, self.conn.read(&mut buf)).await {
                Err(_) => {
                    // RFC 5321 4.5.3.2: after the timeout the server closes, with 421.
                    self.session.shutdown("Timeout waiting for client input");
                    return End::Timeout;
                }
                Ok(Ok(0)) => return End::ClientClosed,
                Ok(Ok(n)) => self.session.feed(&buf[..n]),
                Ok(Err(e)) => return End::Io(e),
            }
        }
    }

    /// Processes events until the session needs input; `Some` ends it.
    async fn handle_events(&mut self) -> Option<End> {
        loop {
            match self.session.next_event() {
                SmtpEvent::NeedInput => return None,
                SmtpEvent::Close => return Some(End::Quit),
                SmtpEvent::Helo { name, ehlo } => {
                    let verdict = self.policy.helo(&self.info, &name, ehlo).await;
                    if !matches!(verdict, Verdict::Reject(_) | Verdict::Tempfail(_) | Verdict::Disconnect(_)) {
                        tracing::info!(session = %self.info.id, helo = %name, ehlo, "helo");
                        self.info.helo = Some(name);
                    }
                    self.session.verdict(verdict);
                }
                SmtpEvent::Mail { from, .. } => {
                    let verdict = self.policy.mail(&self.info, &from).await;
                    log_verdict(&self.info, "mail", &from, &verdict);
                    self.session.verdict(verdict);
                }
                SmtpEvent::Rcpt { to } => {
                    let verdict = self.policy.rcpt(&self.info, &self.session.envelope(), &to).await;
                    log_verdict(&self.info, "rcpt", &to, &verdict);
                    self.session.verdict(verdict);
                }
                SmtpEvent::Vrfy(arg) => {
                    let reply = self.policy.vrfy(&self.info, &arg).await;
                    self.session.reply(reply);
                }
                SmtpEvent::Expn(arg) => {
                    let reply = self.policy.expn(&self.info, &arg).await;
                    self.session.reply(reply);
                }
                SmtpEvent::Message(content) => {
                    let reply = self.accept(content).await;
                    self.session.reply(reply);
                }
                SmtpEvent::StartTls => {
                    if let Err(end) = self.starttls().await {
                        return Some(end);
                    }
                }
                SmtpEvent::Auth { mechanism, username, password } => {
                    let result = self.auth(mechanism, username, password).await;
                    self.session.auth_result(result);
                }
            }
        }
    }

    async fn accept(&mut self, content: Vec<u8>) -> Reply {
        let envelope = self.session.envelope();
        let id = match self.state.delivery.new_id().await {
            Ok(id) => id,
            Err(reply) => return reply,
        };
        let msg = ferrymail_store::format_id(id);
        let decision = self.policy.data(&self.info, &envelope, &content).await;
        if let Some(reply) = decision.verdict.reply() {
            tracing::info!(session = %self.info.id, msg = %msg, reply = %reply, "message refused by policy");
            return reply.clone();
        }
        let trace =
            received::header(&self.info, &self.state.config.hostname, self.session.is_esmtp(), &msg, &envelope.rcpt_to);
        let mut full = Vec::with_capacity(content.len() + trace.len() + 256);
        for (name, value) in &decision.add_headers {
            if let Some(line) = received::plugin_header(name, value) {
                full.extend_from_slice(line.as_bytes());
            }
        }
        full.extend_from_slice(trace.as_bytes());
        full.extend_from_slice(&content);
        drop(content);
        let size = full.len();
        match self.state.delivery.accept(self.policy.as_ref(), &self.info, &envelope, id, full.into()).await {
            Ok(receipt) => {
                tracing::info!(
                    session = %self.info.id, msg = %msg, from = %envelope.mail_from,
                    rcpts = envelope.rcpt_to.len(), size, local = receipt.local, queued = receipt.queued,
                    "accepted"
                );
                Reply::new(250, "2.0.0", format!("Ok: queued as {msg}"))
            }
            Err(reply) => reply,
        }
    }

    async fn starttls(&mut self) -> Result<(), End> {
        let Some(acceptor) = self.state.tls.clone() else {
            return Err(End::TlsFailed(std::io::Error::other("no TLS acceptor")));
        };
        self.conn.write_all(&self.session.take_output()).await.map_err(End::Io)?;
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, self.conn.upgrade(&acceptor)).await {
            Ok(Ok(())) => {
                self.session.tls_established();
                self.info.tls = true;
                self.info.helo = None;
                self.info.auth_user = None;
                self.info.tenant = None;
                tracing::info!(session = %self.info.id, "starttls");
                Ok(())
            }
            Ok(Err(e)) => Err(End::TlsFailed(e)),
            Err(_) => Err(End::Timeout),
        }
    }

    async fn auth(&mut self, mechanism: String, username: String, password: String) -> AuthResult {
        let request = AuthRequest { session: self.info.clone(), mechanism, username: username.clone(), password };
        match self.policy.auth(&request).await {
            AuthOutcome::Ok { user, tenant } => {
                tracing::info!(session = %self.info.id, user = %user, "auth ok");
                self.info.auth_user = Some(user.clone());
                self.info.tenant = tenant;
                AuthResult::Ok { user }
            }
            AuthOutcome::Fail => {
                tracing::warn!(session = %self.info.id, user = %username, client = %self.info.client_ip, "auth failed");
                tokio::time::sleep(self.state.config.auth_failure_delay).await;
                AuthResult::Fail
            }
            AuthOutcome::Tempfail => AuthResult::Tempfail,
        }
    }
}

fn log_verdict(info: &SessionInfo, stage: &str, address: &str, verdict: &Verdict) {
    match verdict.reply() {
        None => tracing::info!(session = %info.id, stage, address = %address, "ok"),
        Some(reply) => tracing::info!(session = %info.id, stage, address = %address, reply = %reply, "refused"),
    }
}
