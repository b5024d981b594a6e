//! POP3 RETR encoding (line-end normalisation and byte-stuffing) through
//! the sans-IO session, per message size.

use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use ferrymail_policy::{Service, SessionInfo};
use ferrymail_proto::pop3::{AuthDone, MaildropEntry, Pop3Config, Pop3Event, Pop3Session};
use std::time::Instant;

fn message(size: usize) -> Vec<u8> {
    let mut m = b"Return-Path: <a@client.test>\r\nSubject: bench\r\n\r\n".to_vec();
    let mut n = 0;
    while m.len() < size {
        if n % 16 == 5 {
            m.push(b'.');
        }
        m.extend_from_slice(format!("line {n:06} ").as_bytes());
        m.resize(m.len() + 63, b'x');
        m.extend_from_slice(b"\r\n");
        n += 1;
    }
    m
}

fn logged_in(size: u64) -> Pop3Session {
    let info = SessionInfo::new("b", Service::Pop3, "127.0.0.1".parse().unwrap(), 1);
    let mut s = Pop3Session::new(Pop3Config::default(), info);
    s.feed(b"USER u\r\nPASS p\r\n");
    assert!(matches!(s.next_event(Instant::now()), Pop3Event::AuthRequested { .. }));
    let maildrop = vec![MaildropEntry { uid: "u1".into(), size }];
    s.auth_done(AuthDone::Ok { maildrop, user: "u@bench.test".into(), tenant: None });
    s.take_output();
    s
}

fn retr(c: &mut Criterion) {
    let mut g = c.benchmark_group("pop3_retr_encode");
    for size in [2_500usize, 1 << 20] {
        let msg = message(size);
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_function(format!("{size}B"), |b| {
            b.iter_batched(
                || logged_in(msg.len() as u64),
                |mut s| {
                    s.feed(b"RETR 1\r\n");
                    assert!(matches!(s.next_event(Instant::now()), Pop3Event::MessageNeeded { .. }));
                    s.message_ready(&msg);
                    black_box(s.take_output().len())
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, retr);
criterion_main!(benches);
