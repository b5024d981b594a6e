//! Commands of the any, not-authenticated and authenticated states (RFC
//! 3501 6.1–6.3), and the dispatch of every command by state.

use super::flags::MessageFlags;
use super::mutf7;
use super::request::Request;
use super::selected::Job;
use super::session::{ImapSession, Mode, State, tagged, untagged};
use super::wire;
use super::{ImapEvent, list};
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;

impl ImapSession {
    /// What CAPABILITY says now (RFC 3501 7.2.1): only what works.
    pub(super) fn capabilities(&self) -> String {
        let mut caps = String::from("IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE");
        caps.push_str(" CHILDREN SPECIAL-USE");
        if matches!(self.state, State::NotAuthenticated) {
            if self.cfg.starttls_available && !self.info.tls {
                caps.push_str(" STARTTLS");
            }
            if self.login_disabled() {
                caps.push_str(" LOGINDISABLED");
            } else {
                caps.push_str(" AUTH=PLAIN");
            }
        }
        caps
    }

    pub(super) fn command(&mut self, tag: String, body: CommandBody<'static>) -> Option<ImapEvent> {
        match body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                untagged(&mut self.output, &format!("CAPABILITY {caps}"));
                self.finish(&tag, "CAPABILITY completed");
                None
            }
            CommandBody::Noop => {
                // RFC 3501 6.1.2: a chance to hear of changes.
                self.finish(&tag, "NOOP completed");
                None
            }
            CommandBody::Logout => {
                untagged(&mut self.output, "BYE Logging out");
                tagged(&mut self.output, &tag, "OK", "LOGOUT completed");
                self.state = State::Logout;
                None
            }
            CommandBody::Id { .. } => {
                // RFC 2971 3.1: we may tell nothing about ourselves.
                untagged(&mut self.output, "ID (\"name\" \"ferrymail\")");
                self.finish(&tag, "ID completed");
                None
            }
            CommandBody::StartTLS | CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
                if !matches!(self.state, State::NotAuthenticated) {
                    return self.bad(&tag, "already authenticated");
                }
                self.not_authenticated(tag, body)
            }
            _ if matches!(self.state, State::NotAuthenticated) => self.bad(&tag, "log in first"),
            CommandBody::Enable { .. } => {
                // RFC 5161 3.1: nothing we offer needs enabling yet.
                untagged(&mut self.output, "ENABLED");
                self.finish(&tag, "ENABLE completed");
                None
            }
            CommandBody::Namespace => {
                untagged(&mut self.output, "NAMESPACE ((\"\" \"/\")) NIL NIL");
                self.finish(&tag, "NAMESPACE completed");
                None
            }
            CommandBody::Select { mailbox, .. } => self.select(tag, &mailbox, false),
            CommandBody::Examine { mailbox, .. } => self.select(tag, &mailbox, true),
            CommandBody::Create { mailbox } => self.mailbox_op(tag, &mailbox, |name| Request::Create { name }),
            CommandBody::Delete { mailbox } => self.mailbox_op(tag, &mailbox, |name| Request::Delete { name }),
            CommandBody::Subscribe { mailbox } => {
                self.mailbox_op(tag, &mailbox, |name| Request::Subscribe { name, subscribe: true })
            }
            CommandBody::Unsubscribe { mailbox } => {
                self.mailbox_op(tag, &mailbox, |name| Request::Subscribe { name, subscribe: false })
            }
            CommandBody::Rename { from, to } => {
                let (Some(from), Some(to)) = (mailbox_name(&from), mailbox_name(&to)) else {
                    return self.bad_name(&tag);
                };
                let is_inbox = |n: &str| n.eq_ignore_ascii_case("INBOX");
                if from == to || (is_inbox(&from) && is_inbox(&to)) {
                    tagged(&mut self.output, &tag, "NO", "[ALREADYEXISTS] Cannot rename a mailbox to itself");
                    return None;
                }
                self.request(Job::Simple { tag, what: "RENAME" }, Request::Rename { from, to })
            }
            CommandBody::List { reference, mailbox_wildcard } => self.list(tag, false, &reference, &mailbox_wildcard),
            CommandBody::Lsub { reference, mailbox_wildcard } => self.list(tag, true, &reference, &mailbox_wildcard),
            CommandBody::Status { mailbox, item_names } => {
                if item_names.is_empty() {
                    // RFC 3501 9: status-att-list has at least one item.
                    return self.bad(&tag, "empty status list");
                }
                let Some(name) = mailbox_name(&mailbox) else {
                    return self.bad_name(&tag);
                };
                let shown = String::from_utf8_lossy(raw_name(&mailbox)).into_owned();
                let items = item_names.into_owned();
                self.request(Job::Status { tag, name: shown, items }, Request::Status { name })
            }
            CommandBody::Append { mailbox, flags, date, message } => {
                let Some(name) = mailbox_name(&mailbox) else {
                    return self.bad_name(&tag);
                };
                let content = match message {
                    LiteralOrLiteral8::Literal(l) => l.into_inner().into_owned(),
                    LiteralOrLiteral8::Literal8(l) => l.data.into_owned(),
                };
                if content.is_empty() {
                    tagged(&mut self.output, &tag, "NO", "empty message");
                    return None;
                }
                let request = Request::Append {
                    name,
                    flags: MessageFlags::from_list(&flags),
                    internal_date: date.map(|d| wire::unix(d.as_ref())),
                    content,
                };
                self.request(Job::Append { tag }, request)
            }
            CommandBody::Idle if self.selected().is_some() || matches!(self.state, State::Authenticated) => {
                // RFC 2177 3: report what is pending, then wait for DONE.
                self.announce(true, false);
                self.output.extend_from_slice(b"+ idling\r\n");
                self.mode = Mode::Idle { tag };
                None
            }
            body => self.selected_command(tag, body),
        }
    }

    fn select(&mut self, tag: String, mailbox: &Mailbox<'_>, read_only: bool) -> Option<ImapEvent> {
        // RFC 3501 6.3.1: a failed SELECT leaves no mailbox selected, and so
        // does a successful one of another mailbox (RFC 7162 3.2.11 CLOSED).
        if let State::Selected(_) = self.state {
            self.state = State::Authenticated;
            untagged(&mut self.output, "OK [CLOSED] Previous mailbox closed");
        }
        let Some(name) = mailbox_name(mailbox) else {
            return self.bad_name(&tag);
        };
        self.request(Job::Select { tag, read_only }, Request::Select { name, read_only })
    }

    /// A mailbox name that is not valid modified UTF-7 (RFC 3501 5.1.3):
    /// `NO`, as Dovecot answers (the command itself is well-formed).
    pub(super) fn bad_name(&mut self, tag: &str) -> Option<ImapEvent> {
        tagged(&mut self.output, tag, "NO", "Mailbox name is not valid modified UTF-7 (RFC 3501 5.1.3)");
        None
    }

    fn mailbox_op(
        &mut self,
        tag: String,
        mailbox: &Mailbox<'_>,
        make: impl FnOnce(String) -> Request,
    ) -> Option<ImapEvent> {
        let Some(name) = mailbox_name(mailbox) else {
            return self.bad_name(&tag);
        };
        let request = make(name);
        let what = match request {
            Request::Create { .. } => "CREATE",
            Request::Delete { .. } => "DELETE",
            Request::Subscribe { subscribe: true, .. } => "SUBSCRIBE",
            _ => "UNSUBSCRIBE",
        };
        self.request(Job::Simple { tag, what }, request)
    }

    fn list(
        &mut self,
        tag: String,
        lsub: bool,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
    ) -> Option<ImapEvent> {
        let reference = String::from_utf8_lossy(raw_name(reference)).into_owned();
        let pattern = match pattern {
            ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
            ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
        };
        if pattern.is_empty() {
            list::write(&mut self.output, lsub, &reference, "", &[], &[], Default::default());
            self.finish(&tag, if lsub { "LSUB completed" } else { "LIST completed" });
            return None;
        }
        let selection = self.list_selection;
        self.request(Job::List { tag, lsub, reference, pattern, selection }, Request::List)
    }

    /// Writes the STATUS response (RFC 3501 7.2.4).
    pub(super) fn write_status(
        &mut self,
        shown: &str,
        items: &[StatusDataItemName],
        s: &super::request::MailboxStatus,
    ) {
        let out = &mut self.output;
        out.extend_from_slice(b"* STATUS ");
        wire::astring(out, shown.as_bytes());
        let mut parts = Vec::new();
        for item in items {
            parts.push(match item {
                StatusDataItemName::Messages => format!("MESSAGES {}", s.messages),
                StatusDataItemName::Recent => format!("RECENT {}", s.recent),
                StatusDataItemName::UidNext => format!("UIDNEXT {}", s.uid_next),
                StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", s.uid_validity),
                StatusDataItemName::Unseen => format!("UNSEEN {}", s.unseen),
                _ => continue,
            });
        }
        out.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
    }
}

/// The name as the client wrote it (modified UTF-7).
pub(super) fn raw_name<'a>(mailbox: &'a Mailbox<'_>) -> &'a [u8] {
    match mailbox {
        Mailbox::Inbox => b"INBOX",
        Mailbox::Other(other) => other.as_ref(),
    }
}

/// The store's name for a mailbox: UTF-8, INBOX in capitals; `None` for
/// invalid modified UTF-7.
pub(super) fn mailbox_name(mailbox: &Mailbox<'_>) -> Option<String> {
    match mailbox {
        Mailbox::Inbox => Some("INBOX".to_string()),
        Mailbox::Other(other) => {
            let name = mutf7::decode(other.as_ref())?;
            // "INBOX/x" keeps INBOX's spelling whatever the client's case.
            match name.get(..6) {
                Some(head) if head.eq_ignore_ascii_case("INBOX/") => Some(format!("INBOX/{}", &name[6..])),
                _ => Some(name),
            }
        }
    }
}
