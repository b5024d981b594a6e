//! The selected state (RFC 3501 6.4) and every command that waits for the
//! store: each is a [`Job`] that asks for one [`Request`] at a time and is
//! stepped by the answer.

use super::ImapEvent;
use super::fetch::{self, FetchPlan};
use super::flags::MessageFlags;
use super::list_extended::Selection;
use super::request::{Answer, CopyOutcome, Failure, MessageData, Request, StoreFlags};
use super::search::{self, SearchPlan};
use super::sequence::resolve;
use super::session::{ImapSession, State, tagged, untagged};
use super::view::{View, flag_list};
use super::{commands, list};
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::status::StatusDataItemName;
use std::collections::VecDeque;

/// A command in progress, waiting for the answer to its last request.
pub(crate) enum Job {
    Login {
        tag: String,
    },
    Select {
        tag: String,
        read_only: bool,
    },
    List {
        tag: String,
        lsub: bool,
        reference: String,
        pattern: String,
        selection: Selection,
    },
    Status {
        tag: String,
        name: String,
        items: Vec<StatusDataItemName>,
    },
    /// CREATE, DELETE, RENAME, (UN)SUBSCRIBE: OK or NO.
    Simple {
        tag: String,
        what: &'static str,
    },
    Append {
        tag: String,
    },
    Fetch(FetchJob),
    Store {
        tag: String,
        uid: bool,
        silent: bool,
    },
    Search(SearchJob),
    Expunge(ExpungeJob),
    Copy {
        tag: String,
        uid: bool,
        remove: bool,
    },
}

pub(crate) struct FetchJob {
    tag: String,
    uid: bool,
    plan: FetchPlan,
    left: VecDeque<u32>,
    batch: Vec<u32>,
    /// Messages that got `\Seen` from this FETCH: their FLAGS are sent.
    seen_now: Vec<u32>,
}

pub(crate) struct SearchJob {
    tag: String,
    uid: bool,
    plan: SearchPlan,
    left: VecDeque<u32>,
    batch: Vec<u32>,
    found: Vec<u32>,
    /// Row plans: the messages without a kept search row, answered from
    /// their summaries once the rows are done.
    missing: Vec<u32>,
    /// Rows computed from summaries, to keep for the next SEARCH.
    keep: Vec<(u32, Vec<u8>)>,
}

pub(crate) struct ExpungeJob {
    tag: String,
    /// UID EXPUNGE's set (RFC 4315 2.1); `None`: every `\Deleted` message.
    only: Option<Vec<u32>>,
    /// CLOSE: expunge silently, then leave the selected state.
    close: bool,
    /// The messages are known and the removal was asked for.
    removing: bool,
}

impl ImapSession {
    pub(super) fn selected_command(&mut self, tag: String, body: CommandBody<'static>) -> Option<ImapEvent> {
        let State::Selected(view) = &self.state else {
            return self.bad(&tag, "no mailbox selected");
        };
        let (mailbox, read_only) = (view.id, view.read_only);
        match body {
            CommandBody::Check => {
                self.finish(&tag, "CHECK completed");
                None
            }
            CommandBody::Close | CommandBody::Unselect => {
                if read_only || matches!(body, CommandBody::Unselect) {
                    // RFC 3691: UNSELECT never expunges; nor does CLOSE of
                    // a mailbox opened with EXAMINE (RFC 3501 6.4.2).
                    self.state = State::Authenticated;
                    tagged(&mut self.output, &tag, "OK", &format!("{} completed", body.name()));
                    return None;
                }
                let job = ExpungeJob { tag, only: None, close: true, removing: false };
                self.expunge_start(job, mailbox)
            }
            CommandBody::Expunge | CommandBody::ExpungeUid { .. } if read_only => {
                // Nothing can be removed from an EXAMINEd mailbox; Dovecot
                // answers OK (no EXPUNGE responses), and so does this.
                self.announce(false, false);
                tagged(&mut self.output, &tag, "OK", "Expunge completed (read-only mailbox: nothing removed)");
                None
            }
            CommandBody::Expunge => {
                self.expunge_start(ExpungeJob { tag, only: None, close: false, removing: false }, mailbox)
            }
            CommandBody::ExpungeUid { sequence_set } => {
                let only = match resolve(&sequence_set, self.view(), true) {
                    Ok(uids) => uids,
                    Err(e) => return self.bad(&tag, e),
                };
                self.expunge_start(ExpungeJob { tag, only: Some(only), close: false, removing: false }, mailbox)
            }
            CommandBody::Fetch { sequence_set, macro_or_item_names, uid, .. } => {
                let uids = match resolve(&sequence_set, self.view(), uid) {
                    Ok(uids) => uids,
                    Err(e) => return self.bad(&tag, e),
                };
                if let MacroOrMessageDataItemNames::MessageDataItemNames(items) = &macro_or_item_names
                    && items.iter().any(|i| {
                        matches!(i, MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. })
                    })
                {
                    // Not advertised (RFC 3516); an empty answer would not be IMAP.
                    return self.bad(&tag, "BINARY is not supported");
                }
                let plan = FetchPlan::new(macro_or_item_names, uid, read_only);
                let job = FetchJob { tag, uid, plan, left: uids.into(), batch: Vec::new(), seen_now: Vec::new() };
                self.fetch_next(job)
            }
            CommandBody::Store { sequence_set, kind, response, flags, uid } => {
                let uids = match resolve(&sequence_set, self.view(), uid) {
                    Ok(uids) => uids,
                    Err(e) => return self.bad(&tag, e),
                };
                // RFC 3501 2.3.2: \Recent cannot be set and other
                // `\`-flags do not exist; BAD, as Dovecot answers.
                if let Some(bad) = flags.iter().find(|f| matches!(f, Flag::Extension(_))) {
                    return self.bad(&tag, &format!("invalid system flag {bad}"));
                }
                if read_only {
                    // Dovecot: OK, nothing changed (RFC 3501 leaves it open).
                    tagged(&mut self.output, &tag, "OK", "Store ignored with read-only mailbox");
                    return None;
                }
                let add = match kind {
                    StoreType::Add => Some(true),
                    StoreType::Remove => Some(false),
                    StoreType::Replace => None,
                };
                let change = StoreFlags { add, flags: MessageFlags::from_list(&flags) };
                if uids.is_empty() {
                    self.announce(uid, uid);
                    tagged(&mut self.output, &tag, "OK", "STORE completed");
                    return None;
                }
                let silent = response == StoreResponse::Silent;
                self.request(Job::Store { tag, uid, silent }, Request::SetFlags { mailbox, uids, change })
            }
            CommandBody::Search { charset, criteria, uid } => {
                let mut latin1 = false;
                if let Some(charset) = charset {
                    let c = charset.as_ref();
                    latin1 = c.eq_ignore_ascii_case("ISO-8859-1") || c.eq_ignore_ascii_case("LATIN1");
                    if !latin1 && !c.eq_ignore_ascii_case("UTF-8") && !c.eq_ignore_ascii_case("US-ASCII") {
                        tagged(
                            &mut self.output,
                            &tag,
                            "NO",
                            "[BADCHARSET (UTF-8 US-ASCII ISO-8859-1)] Unsupported charset",
                        );
                        return None;
                    }
                }
                let plan = match SearchPlan::new(criteria.into_inner(), self.view(), latin1) {
                    Ok(plan) => plan,
                    Err(e) => return self.bad(&tag, e),
                };
                let left = match &plan.candidates {
                    Some(uids) => uids.clone().into(),
                    None => self.view().uids().to_vec().into(),
                };
                let job = SearchJob {
                    tag,
                    uid,
                    plan,
                    left,
                    batch: Vec::new(),
                    found: Vec::new(),
                    missing: Vec::new(),
                    keep: Vec::new(),
                };
                self.search_next(job)
            }
            CommandBody::Copy { sequence_set, mailbox: target, uid } => {
                self.copy(tag, &sequence_set, &target, uid, false, mailbox)
            }
            CommandBody::Move { sequence_set, mailbox: target, uid } => {
                if read_only {
                    tagged(&mut self.output, &tag, "NO", "[READ-ONLY] Mailbox is read-only");
                    return None;
                }
                self.copy(tag, &sequence_set, &target, uid, true, mailbox)
            }
            CommandBody::Idle => self.bad(&tag, "IDLE needs an authenticated state"),
            _ => self.bad(&tag, "command unknown or not supported"),
        }
    }

    pub(super) fn view(&self) -> &View {
        match &self.state {
            State::Selected(view) => view,
            _ => unreachable!("only called in the selected state"),
        }
    }

    fn view_mut(&mut self) -> Option<&mut View> {
        match &mut self.state {
            State::Selected(view) => Some(view),
            _ => None,
        }
    }

    fn copy(
        &mut self,
        tag: String,
        set: &imap_codec::imap_types::sequence::SequenceSet,
        target: &imap_codec::imap_types::mailbox::Mailbox<'_>,
        uid: bool,
        remove: bool,
        mailbox: u32,
    ) -> Option<ImapEvent> {
        let uids = match resolve(set, self.view(), uid) {
            Ok(uids) => uids,
            Err(e) => return self.bad(&tag, e),
        };
        let Some(to) = commands::mailbox_name(target) else {
            return self.bad_name(&tag);
        };
        if uids.is_empty() {
            self.announce(uid, uid);
            tagged(&mut self.output, &tag, "OK", "Nothing to copy");
            return None;
        }
        self.request(Job::Copy { tag, uid, remove }, Request::Copy { mailbox, uids, to, remove })
    }

    fn expunge_start(&mut self, job: ExpungeJob, mailbox: u32) -> Option<ImapEvent> {
        // The flags of record are the store's, not what this session last heard.
        let uids = match &job.only {
            Some(only) => only.clone(),
            None => self.view().uids().to_vec(),
        };
        if uids.is_empty() {
            return self.expunge_done(job, Vec::new());
        }
        self.request(Job::Expunge(job), Request::Messages { mailbox, uids, content: false, summary: false })
    }

    fn expunge_done(&mut self, job: ExpungeJob, removed: Vec<u32>) -> Option<ImapEvent> {
        if job.close {
            self.state = State::Authenticated;
            tagged(&mut self.output, &job.tag, "OK", "CLOSE completed");
            return None;
        }
        if let State::Selected(view) = &mut self.state {
            for uid in removed {
                if let Some(seq) = view.remove(uid) {
                    untagged(&mut self.output, &format!("{seq} EXPUNGE"));
                }
            }
        }
        self.finish(&job.tag, "EXPUNGE completed");
        None
    }

    fn fetch_next(&mut self, mut job: FetchJob) -> Option<ImapEvent> {
        let mailbox = self.selected()?;
        if job.left.is_empty() {
            // RFC 3501 7.4.1: no EXPUNGE during FETCH; UID FETCH may have them.
            self.announce(job.uid, job.uid);
            tagged(&mut self.output, &job.tag, "OK", if job.uid { "UID FETCH completed" } else { "FETCH completed" });
            return None;
        }
        let n = if job.plan.content { self.cfg.content_batch } else { self.cfg.meta_batch };
        job.batch = job.left.drain(..n.min(job.left.len())).collect();
        if job.plan.sets_seen {
            let view = self.view();
            let unseen: Vec<u32> =
                job.batch.iter().copied().filter(|&u| view.has_flag(u, MessageFlags::SEEN) == Some(false)).collect();
            if !unseen.is_empty() {
                job.seen_now = unseen.clone();
                let change = StoreFlags { add: Some(true), flags: MessageFlags::system(MessageFlags::SEEN) };
                return self.request(Job::Fetch(job), Request::SetFlags { mailbox, uids: unseen, change });
            }
        }
        let uids = job.batch.clone();
        let (content, summary) = (job.plan.content, job.plan.summary);
        self.request(Job::Fetch(job), Request::Messages { mailbox, uids, content, summary })
    }

    fn search_next(&mut self, mut job: SearchJob) -> Option<ImapEvent> {
        let mailbox = self.selected()?;
        if !job.keep.is_empty() {
            let rows = std::mem::take(&mut job.keep);
            return self.request(Job::Search(job), Request::KeepSearchRows { mailbox, rows });
        }
        if job.plan.rows && job.left.is_empty() && !job.missing.is_empty() {
            // The rows are done; the messages that had none are read the
            // slower way (and their rows kept on the way).
            job.plan.rows = false;
            job.missing.sort_unstable();
            job.left = std::mem::take(&mut job.missing).into();
        }
        if job.left.is_empty() {
            // Rows first, then the rest: back in UID order.
            job.found.sort_unstable();
            let view = self.view();
            let mut line = String::from("SEARCH");
            for uid in &job.found {
                let n = if job.uid { Some(*uid) } else { view.seq_of(*uid) };
                if let Some(n) = n {
                    line.push_str(&format!(" {n}"));
                }
            }
            untagged(&mut self.output, &line);
            self.announce(job.uid, job.uid);
            tagged(&mut self.output, &job.tag, "OK", "SEARCH completed");
            return None;
        }
        if job.plan.view_only() {
            // System flags and numbers only: the view knows them (kept
            // current by the change feed), so no message is read — SEARCH
            // UNSEEN of a million messages is a pass over a byte array.
            let view = self.view();
            let found: Vec<u32> = job.left.drain(..).filter(|&u| search::matches_view(&job.plan, u, view)).collect();
            job.found.extend(found);
            return self.search_next(job);
        }
        let n = if job.plan.content { self.cfg.content_batch } else { self.cfg.meta_batch };
        job.batch = job.left.drain(..n.min(job.left.len())).collect();
        if job.plan.rows {
            let uids = job.batch.clone();
            return self.request(Job::Search(job), Request::SearchRows { mailbox, uids });
        }
        let (uids, content, summary) = (job.batch.clone(), job.plan.content, job.plan.summary);
        self.request(Job::Search(job), Request::Messages { mailbox, uids, content, summary })
    }

    /// Continues `job` with the driver's answer.
    pub(super) fn step(&mut self, job: Job, answer: Answer) -> Option<ImapEvent> {
        match (job, answer) {
            (Job::Select { tag, read_only }, Answer::Selected(result)) => match result {
                Ok(mailbox) => {
                    let status = mailbox.status;
                    let view = View::new(read_only, mailbox);
                    let out = &mut self.output;
                    let flags = flag_list(view.keywords());
                    untagged(out, &format!("FLAGS ({flags})"));
                    untagged(out, &format!("{} EXISTS", view.len()));
                    untagged(out, &format!("{} RECENT", view.recent_count()));
                    if let Some(seq) = view.first_unseen() {
                        untagged(out, &format!("OK [UNSEEN {seq}] First unseen"));
                    }
                    untagged(out, &format!("OK [UIDVALIDITY {}] UIDs valid", status.uid_validity));
                    untagged(out, &format!("OK [UIDNEXT {}] Predicted next UID", status.uid_next));
                    if read_only {
                        untagged(out, "OK [PERMANENTFLAGS ()] Read-only mailbox");
                        tagged(out, &tag, "OK", "[READ-ONLY] EXAMINE completed");
                    } else {
                        untagged(out, &format!("OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted"));
                        tagged(out, &tag, "OK", "[READ-WRITE] SELECT completed");
                    }
                    self.state = State::Selected(Box::new(view));
                    None
                }
                Err(f) => self.no(&tag, f, false),
            },
            (Job::List { tag, lsub, reference, pattern, selection }, Answer::Listed(result)) => match result {
                Ok((mailboxes, subscriptions)) => {
                    list::write(&mut self.output, lsub, &reference, &pattern, &mailboxes, &subscriptions, selection);
                    self.finish(&tag, if lsub { "LSUB completed" } else { "LIST completed" });
                    None
                }
                Err(f) => self.no(&tag, f, false),
            },
            (Job::Status { tag, name, items }, Answer::Status(result)) => match result {
                Ok(status) => {
                    self.write_status(&name, &items, &status);
                    self.finish(&tag, "STATUS completed");
                    None
                }
                Err(f) => self.no(&tag, f, false),
            },
            (Job::Simple { tag, what }, Answer::Done(result)) => match result {
                Ok(()) => {
                    self.finish(&tag, &format!("{what} completed"));
                    None
                }
                Err(f) => self.no(&tag, f, false),
            },
            (Job::Append { tag }, Answer::Appended(result)) => match result {
                Ok((validity, uid)) => {
                    self.finish(&tag, &format!("[APPENDUID {validity} {uid}] APPEND completed"));
                    None
                }
                Err(f) => self.no(&tag, f, true),
            },
            (Job::Store { tag, uid, silent }, Answer::Flags(result)) => match result {
                Ok(updated) => {
                    if let Some(view) = self.view_mut() {
                        let mut out = Vec::new();
                        for (u, flags) in &updated {
                            view.set_flags(*u, flags.clone());
                        }
                        // Before the FETCH responses that show a new keyword.
                        view.announce_keywords(&mut out);
                        for (u, flags) in updated {
                            let Some(seq) = view.seq_of(u) else { continue };
                            if !silent {
                                out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
                                if uid {
                                    out.extend_from_slice(format!("UID {u} ").as_bytes());
                                }
                                out.extend_from_slice(b"FLAGS ");
                                view.shown(u, flags).write_list(&mut out);
                                out.extend_from_slice(b")\r\n");
                            }
                        }
                        self.output.extend_from_slice(&out);
                    }
                    self.announce(uid, uid);
                    tagged(&mut self.output, &tag, "OK", "STORE completed");
                    None
                }
                Err(f) => self.no(&tag, f, false),
            },
            (Job::Fetch(job), Answer::Flags(result)) => match result {
                Ok(updated) => {
                    if let Some(view) = self.view_mut() {
                        for (u, flags) in updated {
                            view.set_flags(u, flags);
                        }
                    }
                    let mailbox = self.selected()?;
                    let uids = job.batch.clone();
                    let (content, summary) = (job.plan.content, job.plan.summary);
                    self.request(Job::Fetch(job), Request::Messages { mailbox, uids, content, summary })
                }
                Err(f) => self.no(&job.tag, f, false),
            },
            (Job::Fetch(mut job), Answer::Messages(result)) => match result {
                Ok(mut messages) => {
                    let State::Selected(view) = &self.state else { return None };
                    for m in &mut messages {
                        if view.is_recent(m.uid) {
                            m.flags.system |= MessageFlags::RECENT;
                        }
                        let Some(seq) = view.seq_of(m.uid) else { continue };
                        let show_flags = job.seen_now.contains(&m.uid);
                        fetch::write(&mut self.output, seq, m, &job.plan, job.uid, show_flags);
                    }
                    let again = requeue(&job.batch, &messages, &mut job.left);
                    job.seen_now.retain(|u| again.contains(u));
                    self.fetch_next(job)
                }
                Err(f) => self.no(&job.tag, f, false),
            },
            (Job::Search(mut job), Answer::SearchRows(result)) => match result {
                Ok(rows) => {
                    let State::Selected(view) = &self.state else { return None };
                    let mut had = rows.ends.iter().map(|e| e.0).peekable();
                    for &uid in &job.batch {
                        if had.next_if_eq(&uid).is_none() {
                            job.missing.push(uid);
                        }
                    }
                    for (uid, row) in rows.iter() {
                        match search::matches_row(&job.plan, uid, row, view) {
                            Some(true) => job.found.push(uid),
                            Some(false) => {}
                            None => job.missing.push(uid),
                        }
                    }
                    self.search_next(job)
                }
                Err(f) => self.no(&job.tag, f, false),
            },
            // Keeping rows is an optimisation: a failure changes no answer.
            (Job::Search(job), Answer::Done(_)) => self.search_next(job),
            (Job::Search(mut job), Answer::Messages(result)) => match result {
                Ok(messages) => {
                    let State::Selected(view) = &self.state else { return None };
                    for m in &messages {
                        let seq = view.seq_of(m.uid).unwrap_or(0);
                        if search::matches(&job.plan, m, seq, view) {
                            job.found.push(m.uid);
                        }
                        if let Some(summary) = m.summary.as_ref().filter(|_| job.plan.summary && !job.plan.content) {
                            job.keep.push((m.uid, summary.search_row()));
                        }
                    }
                    requeue(&job.batch, &messages, &mut job.left);
                    self.search_next(job)
                }
                Err(f) => self.no(&job.tag, f, false),
            },
            (Job::Expunge(mut job), Answer::Messages(result)) if !job.removing => match result {
                Ok(messages) => {
                    let deleted: Vec<u32> =
                        messages.iter().filter(|m| m.flags.has(MessageFlags::DELETED)).map(|m| m.uid).collect();
                    if deleted.is_empty() {
                        return self.expunge_done(job, Vec::new());
                    }
                    job.removing = true;
                    let mailbox = self.selected()?;
                    self.request(Job::Expunge(job), Request::Expunge { mailbox, uids: deleted })
                }
                Err(f) => self.no(&job.tag, f, false),
            },
            (Job::Expunge(job), Answer::Expunged(result)) => match result {
                Ok(removed) => self.expunge_done(job, removed),
                Err(f) => self.no(&job.tag, f, false),
            },
            (Job::Copy { tag, uid, remove }, Answer::Copied(result)) => match result {
                Ok(CopyOutcome { uid_validity, mapping }) => {
                    let from = uid_set(mapping.iter().map(|m| m.0));
                    let to = uid_set(mapping.iter().map(|m| m.1));
                    let code = format!("[COPYUID {uid_validity} {from} {to}]");
                    if !remove {
                        self.announce(uid, uid);
                        tagged(&mut self.output, &tag, "OK", &format!("{code} COPY completed"));
                        return None;
                    }
                    // RFC 6851 4.3: COPYUID in an untagged OK, then the EXPUNGEs.
                    untagged(&mut self.output, &format!("OK {code} Moved"));
                    if let Some(view) = self.view_mut() {
                        let mut out = Vec::new();
                        for (source, _) in mapping {
                            if let Some(seq) = view.remove(source) {
                                out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
                            }
                        }
                        self.output.extend_from_slice(&out);
                    }
                    self.finish(&tag, "MOVE completed");
                    None
                }
                Err(f) => self.no(&tag, f, true),
            },
            (job, _) => {
                // An answer of the wrong kind is the driver's bug; the client
                // gets a clean NO rather than a stuck command.
                let tag = job_tag(&job).to_string();
                self.no(&tag, Failure::Unavailable, false)
            }
        }
    }

    fn no(&mut self, tag: &str, failure: Failure, try_create: bool) -> Option<ImapEvent> {
        let text = match failure {
            Failure::NoSuchMailbox if try_create => "[TRYCREATE] No such mailbox".to_string(),
            Failure::NoSuchMailbox => "[NONEXISTENT] No such mailbox".to_string(),
            Failure::Exists => "[ALREADYEXISTS] Mailbox already exists".to_string(),
            Failure::Cannot(why) => format!("[CANNOT] {why}"),
            Failure::Unavailable => "[UNAVAILABLE] Temporary failure, try again later".to_string(),
        };
        tagged(&mut self.output, tag, "NO", &text);
        None
    }
}

fn job_tag(job: &Job) -> &str {
    match job {
        Job::Login { tag }
        | Job::Select { tag, .. }
        | Job::List { tag, .. }
        | Job::Status { tag, .. }
        | Job::Simple { tag, .. }
        | Job::Append { tag }
        | Job::Store { tag, .. }
        | Job::Copy { tag, .. } => tag,
        Job::Fetch(j) => &j.tag,
        Job::Search(j) => &j.tag,
        Job::Expunge(j) => &j.tag,
    }
}

/// The driver may answer a batch with its first messages only (its memory
/// budget for contents ran out): the UIDs after the last one answered go
/// back to the front of `left`; those before it that are missing were
/// expunged. Returns the UIDs put back.
fn requeue(batch: &[u32], answered: &[MessageData], left: &mut VecDeque<u32>) -> Vec<u32> {
    let Some(last) = answered.last().map(|m| m.uid) else { return Vec::new() };
    let again: Vec<u32> = batch.iter().copied().filter(|&u| u > last).collect();
    for &uid in again.iter().rev() {
        left.push_front(uid);
    }
    again
}

/// RFC 4315 `uid-set`: ranges where UIDs are consecutive.
pub(super) fn uid_set(uids: impl Iterator<Item = u32>) -> String {
    let mut out = String::new();
    let mut run: Option<(u32, u32)> = None;
    let push = |out: &mut String, (a, b): (u32, u32)| {
        if !out.is_empty() {
            out.push(',');
        }
        if a == b { out.push_str(&a.to_string()) } else { out.push_str(&format!("{a}:{b}")) }
    };
    for u in uids {
        run = match run {
            Some((a, b)) if u == b + 1 => Some((a, u)),
            Some(r) => {
                push(&mut out, r);
                Some((u, u))
            }
            None => Some((u, u)),
        };
    }
    if let Some(r) = run {
        push(&mut out, r);
    }
    out
}
