//! The session state machine against a scripted milter on a socket pair:
//! which commands go out at which stage, and what each answer becomes.

use super::*;
use ferrymail_policy::Reply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn sockets_in_postfix_and_sendmail_notation() {
    assert_eq!(Socket::parse("inet:127.0.0.1:11332").unwrap(), Socket::Inet("127.0.0.1:11332".into()));
    assert_eq!(Socket::parse("inet:8891@localhost").unwrap(), Socket::Inet("localhost:8891".into()));
    assert_eq!(Socket::parse("unix:/run/x.sock").unwrap(), Socket::Unix("/run/x.sock".into()));
    for bad in ["127.0.0.1:1", "inet:host", "inet::25", "inet:h:0", "unix:"] {
        assert!(Socket::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn messages_split_into_fields_and_body() {
    let (h, body) = split_message(b"Subject: a\r\n b\r\nTo:x@y\r\n\r\nbody\r\n");
    assert_eq!(h, [("Subject".to_string(), "a\r\n b".to_string()), ("To".to_string(), "x@y".to_string())]);
    assert_eq!(body, b"body\r\n");
}

/// A milter on a Unix socket that answers each command from `answer`
/// (by command byte; `None`: no answer) and records the commands it got.
async fn scripted(
    answer: impl Fn(u8) -> Option<Vec<Vec<u8>>> + Send + 'static,
) -> (tempfile::TempDir, Socket, Arc<Mutex<Vec<u8>>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = Vec::new();
            loop {
                let mut chunk = [0u8; 4096];
                let Ok(n) = s.read(&mut chunk).await else { break };
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                while buf.len() >= 5 {
                    let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                    if buf.len() < 4 + len {
                        break;
                    }
                    let cmd = buf[4];
                    buf.drain(..4 + len);
                    log.lock().unwrap().push(cmd);
                    let replies = if cmd == b'O' {
                        // version 6, all actions, no protocol flags
                        let mut p = vec![0, 0, 0, 13, b'O'];
                        p.extend_from_slice(&6u32.to_be_bytes());
                        p.extend_from_slice(&0x31u32.to_be_bytes());
                        p.extend_from_slice(&0u32.to_be_bytes());
                        Some(vec![p])
                    } else if cmd == b'D' || cmd == b'A' || cmd == b'Q' {
                        None
                    } else {
                        answer(cmd)
                    };
                    for r in replies.into_iter().flatten() {
                        let _ = s.write_all(&r).await;
                    }
                }
            }
        }
    });
    (dir, Socket::Unix(path), seen)
}

fn packet(code: u8, data: &[u8]) -> Vec<u8> {
    let mut p = ((data.len() + 1) as u32).to_be_bytes().to_vec();
    p.push(code);
    p.extend_from_slice(data);
    p
}

fn milter(socket: Socket, failure: FailurePolicy, timeout: Duration) -> Milter {
    Milter {
        label: "milter:t".into(),
        socket,
        failure,
        timeout,
        hostname: "mx.test".into(),
        sessions: Mutex::default(),
    }
}

fn session() -> SessionInfo {
    let mut s = SessionInfo::new("s1", Service::Smtp, "192.0.2.1".parse().unwrap(), 4000);
    s.helo = Some("client.test".into());
    s
}

const CONTINUE: u8 = b'c';

#[tokio::test]
async fn each_stage_is_told_when_the_chain_reaches_it() {
    let (_d, socket, seen) = scripted(|cmd| Some(vec![packet(if cmd == b'E' { b'a' } else { CONTINUE }, b"")])).await;
    let m = milter(socket, FailurePolicy::Tempfail, Duration::from_secs(5));
    let s = session();
    assert_eq!(m.ask(&s, Stage::Connect).await, DataVerdict::default());
    assert_eq!(*seen.lock().unwrap(), b"ODCH", "optneg, macros, connect, and the helo the session already has");
    m.ask(&s, Stage::Mail { from: "a@b.test" }).await;
    let env = Envelope { mail_from: "a@b.test".into(), rcpt_to: vec![] };
    m.ask(&s, Stage::Rcpt { envelope: &env, rcpt: "x@y.test" }).await;
    let env = Envelope { mail_from: "a@b.test".into(), rcpt_to: vec!["x@y.test".into()] };
    let v = m.ask(&s, Stage::Data { envelope: &env, message: b"Subject: hi\r\n\r\nbody\r\n" }).await;
    assert_eq!(v, DataVerdict::default());
    assert_eq!(*seen.lock().unwrap(), b"ODCHDMDRTLDNBDE", "RCPT told once, then the message");
    // The next transaction needs no abort: the message ended.
    m.ask(&s, Stage::Mail { from: "c@d.test" }).await;
    assert!(seen.lock().unwrap().ends_with(b"EDM"));
    m.end("s1");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(seen.lock().unwrap().ends_with(b"Q"), "QUIT when the session ends");
}

#[tokio::test]
async fn a_milter_first_reached_at_data_is_told_the_session_so_far() {
    let (_d, socket, seen) = scripted(|_| Some(vec![packet(CONTINUE, b"")])).await;
    let m = milter(socket, FailurePolicy::Tempfail, Duration::from_secs(5));
    let env = Envelope { mail_from: "a@b.test".into(), rcpt_to: vec!["x@y.test".into(), "z@y.test".into()] };
    let v = m.ask(&session(), Stage::Data { envelope: &env, message: b"A: 1\r\n\r\nb\r\n" }).await;
    assert_eq!(v, DataVerdict::default());
    assert_eq!(*seen.lock().unwrap(), b"ODCHDMDRDRTLDNBDE");
}

#[tokio::test]
async fn refusals_at_mail_and_rcpt_refuse_that_step_and_the_transaction_is_aborted() {
    let (_d, socket, seen) = scripted(|cmd| {
        Some(vec![match cmd {
            b'R' => packet(b'y', b"550 5.1.1 No such user\0"),
            _ => packet(CONTINUE, b""),
        }])
    })
    .await;
    let m = milter(socket, FailurePolicy::Tempfail, Duration::from_secs(5));
    let s = session();
    let env = Envelope { mail_from: "a@b.test".into(), rcpt_to: vec![] };
    let v = m.ask(&s, Stage::Rcpt { envelope: &env, rcpt: "x@y.test" }).await;
    assert_eq!(v.verdict, Verdict::Reject(Reply::new(550, "5.1.1", "No such user")));
    m.ask(&s, Stage::Mail { from: "a@b.test" }).await;
    assert!(seen.lock().unwrap().ends_with(b"RADM"), "the unfinished transaction is aborted before the next MAIL");
}

#[tokio::test]
async fn accept_means_no_objection_and_discard_drops_at_data() {
    // Accept at MAIL: nothing more is asked for this message.
    let (_d, socket, seen) = scripted(|cmd| Some(vec![packet(if cmd == b'M' { b'a' } else { CONTINUE }, b"")])).await;
    let m = milter(socket, FailurePolicy::Tempfail, Duration::from_secs(5));
    let s = session();
    let env = Envelope { mail_from: "a@b.test".into(), rcpt_to: vec!["x@y.test".into()] };
    assert_eq!(m.ask(&s, Stage::Mail { from: "a@b.test" }).await.verdict, Verdict::Continue);
    let v = m.ask(&s, Stage::Data { envelope: &env, message: b"A: 1\r\n\r\nb\r\n" }).await;
    assert_eq!(v, DataVerdict::default());
    assert_eq!(*seen.lock().unwrap(), b"ODCHDM");

    let (_d, socket, _) = scripted(|cmd| Some(vec![packet(if cmd == b'R' { b'd' } else { CONTINUE }, b"")])).await;
    let m = milter(socket, FailurePolicy::Tempfail, Duration::from_secs(5));
    let env0 = Envelope { mail_from: "a@b.test".into(), rcpt_to: vec![] };
    let v = m.ask(&s, Stage::Rcpt { envelope: &env0, rcpt: "x@y.test" }).await;
    assert_eq!(v, DataVerdict::default(), "discard at RCPT: the recipient goes on");
    let v = m.ask(&s, Stage::Data { envelope: &env, message: b"A: 1\r\n\r\nb\r\n" }).await;
    assert!(v.discard && v.verdict == Verdict::Continue, "and the message is dropped once in: {v:?}");
}

#[tokio::test]
async fn header_edits_come_at_the_end_of_the_message() {
    let (_d, socket, _) = scripted(|cmd| {
        Some(match cmd {
            b'E' => vec![
                packet(b'h', b"X-Spam\0Yes\0"),
                packet(b'i', &[&0u32.to_be_bytes()[..], b"DKIM-Signature\0v=1;\n\tb=abc\0"].concat()),
                packet(b'm', &[&1u32.to_be_bytes()[..], b"Subject\0\0"].concat()),
                packet(b'a', b""),
            ],
            _ => vec![packet(CONTINUE, b"")],
        })
    })
    .await;
    let m = milter(socket, FailurePolicy::Tempfail, Duration::from_secs(5));
    let env = Envelope { mail_from: "a@b.test".into(), rcpt_to: vec!["x@y.test".into()] };
    let v = m.ask(&session(), Stage::Data { envelope: &env, message: b"Subject: x\r\n\r\nb\r\n" }).await;
    use ferrymail_policy::edits::HeaderEdit;
    assert_eq!(
        v.edits,
        [
            HeaderEdit::Append { name: "X-Spam".into(), value: "Yes".into() },
            HeaderEdit::Insert { index: 0, name: "DKIM-Signature".into(), value: "v=1;\r\n\tb=abc".into() },
            HeaderEdit::Change { name: "Subject".into(), index: 1, value: String::new() },
        ]
    );
}

#[tokio::test]
async fn a_bad_answer_is_a_failure() {
    let (_d, socket, _) =
        scripted(|cmd| Some(vec![if cmd == b'E' { packet(b'h', b"Bad Name\0x\0") } else { packet(CONTINUE, b"") }]))
            .await;
    let m = milter(socket, FailurePolicy::Tempfail, Duration::from_secs(5));
    let env = Envelope { mail_from: "a@b.test".into(), rcpt_to: vec!["x@y.test".into()] };
    let v = m.ask(&session(), Stage::Data { envelope: &env, message: b"A: 1\r\n\r\nb\r\n" }).await;
    assert_eq!(v.verdict, Verdict::Tempfail(crate::walk::temp_reply()));
}

#[tokio::test]
async fn a_silent_milter_gets_the_failure_policy_at_the_deadline_for_the_rest_of_the_session() {
    let (_d, socket, _) = scripted(|_| None).await;
    let m = milter(socket, FailurePolicy::Skip, Duration::from_millis(200));
    let s = session();
    let started = Instant::now();
    assert_eq!(m.ask(&s, Stage::Connect).await, DataVerdict::default());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(2), "{waited:?}");
    let started = Instant::now();
    assert_eq!(m.ask(&s, Stage::Helo).await, DataVerdict::default());
    assert!(started.elapsed() < Duration::from_millis(100), "a failed milter is not asked again this session");

    let m = milter(Socket::Unix("/nonexistent/m.sock".into()), FailurePolicy::Tempfail, Duration::from_secs(1));
    assert_eq!(m.ask(&s, Stage::Connect).await.verdict, Verdict::Tempfail(crate::walk::temp_reply()));
}

#[tokio::test]
async fn pop3_and_imap_sessions_pass() {
    let m = milter(Socket::Unix("/nonexistent/m.sock".into()), FailurePolicy::Tempfail, Duration::from_secs(1));
    let s = SessionInfo::new("p", Service::Imap, "192.0.2.1".parse().unwrap(), 1);
    assert_eq!(m.ask(&s, Stage::Connect).await, DataVerdict::default());
}
