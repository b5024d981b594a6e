//! Line limits, the error limit and random input.

use super::*;

#[test]
fn line_limit_counts_crlf_rfc2449_4() {
    let mut s = fresh();
    let fits = format!("USER {}\r\n", "a".repeat(255 - 7));
    assert_eq!(send(&mut s, &fits).1, "+OK send PASS\r\n");
    let long = format!("USER {}\r\nNOOP\r\n", "a".repeat(255 - 6));
    let out = send(&mut s, &long).1;
    assert_eq!(out, "-ERR line too long\r\n-ERR command not valid in this state\r\n");
    let mut s = Pop3Session::new(Pop3Config { max_line: 1000, ..cfg() }, info());
    s.take_output();
    assert_eq!(send(&mut s, &long).1, "+OK send PASS\r\n-ERR command not valid in this state\r\n");
}

#[test]
fn unknown_command_is_err_rfc1939_3() {
    let mut s = logged_in();
    assert_eq!(send(&mut s, "APOP u d\r\n").1, "-ERR unknown command\r\n");
    assert_eq!(send(&mut s, "\r\n").1, "-ERR unknown command\r\n");
}

#[test]
fn too_many_errors_closes_the_session() {
    let mut s = Pop3Session::new(Pop3Config { max_errors: 3, ..cfg() }, info());
    s.take_output();
    let (event, out) = send(&mut s, "BOGUS\r\nSTAT\r\nNOOP\r\nUSER u\r\n");
    assert_eq!(event, Pop3Event::Close);
    let want = "-ERR unknown command\r\n-ERR command not valid in this state\r\n-ERR too many errors\r\n";
    assert_eq!(out, want);
}

#[test]
fn failed_logins_count_towards_the_error_limit_rfc1939_13() {
    let mut s = Pop3Session::new(Pop3Config { max_errors: 2, ..cfg() }, info());
    s.take_output();
    send(&mut s, "USER u\r\nPASS a\r\n");
    s.auth_done(AuthDone::Fail);
    send(&mut s, "USER u\r\nPASS b\r\n");
    s.auth_done(AuthDone::Fail);
    assert_eq!(step(&mut s), (Pop3Event::Close, "-ERR too many errors\r\n".into()));
}

#[test]
fn error_limit_zero_means_unlimited() {
    let mut s = Pop3Session::new(Pop3Config { max_errors: 0, ..cfg() }, info());
    s.take_output();
    assert_eq!(send(&mut s, &"X\r\n".repeat(100)).0, Pop3Event::NeedInput);
}

#[test]
fn nul_and_invalid_utf8_are_refused_rfc1939_3() {
    let mut s = fresh();
    s.feed(b"USER a\0b\r\nUSER \xff\xfe\r\n\0\0\0\r\n");
    let (event, out) = step(&mut s);
    assert_eq!(event, Pop3Event::NeedInput);
    assert_eq!(out.matches("-ERR ").count(), 3, "{out}");
    s.feed(b"AUTH PLAIN\r\n\xff\r\n");
    assert!(step(&mut s).1.ends_with("-ERR invalid base64\r\n"));
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&[u8]] = &[
    b"USER u",
    b"PASS p",
    b"AUTH PLAIN",
    b"AUTH PLAIN AHUAcA==",
    b"*",
    b"=",
    b"STLS",
    b"CAPA",
    b"QUIT",
    b"STAT",
    b"LIST",
    b"LIST 2",
    b"RETR 1",
    b"RETR 0",
    b"DELE 3",
    b"TOP 2 5",
    b"TOP 1",
    b"UIDL",
    b"UIDL 99999999999999999999",
    b"RSET",
    b"NOOP",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b".",
    b"\0",
    b"\xff",
    b"\xc3",
    b"-1",
    b"4294967296",
];

/// Prefixes that put a session in each state before the noise starts.
const STATES: &[&[u8]] = &[
    b"",
    b"USER u\r\n",
    b"AUTH PLAIN\r\n",
    b"USER u\r\nPASS p\r\n",
    b"STLS\r\n",
    b"USER u\r\nPASS p\r\nRETR 1\r\n",
    b"USER u\r\nPASS p\r\nDELE 1\r\nQUIT\r\n",
    b"QUIT\r\n",
];

fn noise(rng: &mut Rng) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..rng.below(12) {
        if rng.below(3) == 0 {
            bytes.extend((0..rng.below(300)).map(|_| rng.next() as u8));
        } else {
            bytes.extend_from_slice(WORDS[rng.below(WORDS.len())]);
            if rng.below(2) == 0 {
                bytes.extend_from_slice(b"\r\n");
            }
        }
    }
    bytes
}

/// Answers whatever the session asks, at random; sometimes not at all.
fn answer(s: &mut Pop3Session, event: &Pop3Event, rng: &mut Rng) {
    match event {
        Pop3Event::AuthRequested { .. } => s.auth_done(match rng.below(4) {
            0 => AuthDone::Fail,
            1 => AuthDone::InUse,
            2 => AuthDone::Tempfail,
            _ => AuthDone::Ok { maildrop: maildrop(), user: "u@x.test".into(), tenant: None },
        }),
        Pop3Event::MessageNeeded { .. } if rng.below(4) == 0 => s.message_unavailable(),
        Pop3Event::MessageNeeded { .. } => s.message_ready(&noise(rng)),
        Pop3Event::UpdateRequested { .. } => s.update_done(rng.below(2) == 0),
        Pop3Event::StartTls => s.tls_established(),
        _ => {}
    }
}

#[test]
fn random_input_never_panics_in_any_state() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..4000 {
        let mut s = Pop3Session::new(Pop3Config { max_errors: (round % 4) as u32 * 5, ..cfg() }, info());
        s.feed(STATES[round % STATES.len()]);
        let mut closed = false;
        for _ in 0..rng.below(8) + 1 {
            s.feed(&noise(&mut rng));
            for _ in 0..50 {
                let event = s.next_event(t0());
                s.take_output();
                if closed {
                    assert_eq!(event, Pop3Event::Close);
                }
                seen.insert(format!("{event:?}").split([' ', '{']).next().unwrap().to_owned());
                match event {
                    Pop3Event::NeedInput => break,
                    Pop3Event::Close => closed = true,
                    ref e if rng.below(8) != 0 => answer(&mut s, e, &mut rng),
                    _ => {}
                }
            }
        }
    }
    // The noise must actually reach every decision point, or it tests little.
    let want = ["AuthRequested", "Close", "MessageNeeded", "NeedInput", "StartTls", "UpdateRequested"];
    assert_eq!(seen, want.map(String::from).into(), "{seen:?}");
}
