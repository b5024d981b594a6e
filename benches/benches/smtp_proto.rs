//! SMTP protocol costs without sockets: command parsing, DATA
//! dot-unstuffing per MB, and one whole transaction through the session.

use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use ferrymail_policy::{Reply, Service, SessionInfo, Verdict};
use ferrymail_proto::smtp::command;
use ferrymail_proto::smtp::data::{DataProgress, DataReceiver};
use ferrymail_proto::smtp::{SmtpConfig, SmtpEvent, SmtpSession};
use std::time::Instant;

const LINES: &[&[u8]] = &[
    b"EHLO client.example.org",
    b"MAIL FROM:<sender@example.org> SIZE=2462 BODY=8BITMIME",
    b"RCPT TO:<bench1@bench.test>",
    b"DATA",
    b"NOOP",
    b"RSET",
    b"QUIT",
];

/// `size` octets of 78-octet CRLF lines; every 16th line starts with a
/// (stuffed) dot; ends with the terminator.
fn stuffed_content(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 8);
    let mut n = 0;
    while out.len() < size {
        if n % 16 == 5 {
            out.extend_from_slice(b"..");
        }
        out.extend_from_slice(format!("line {n:06} ").as_bytes());
        out.resize(out.len() + 63, b'x');
        out.extend_from_slice(b"\r\n");
        n += 1;
    }
    out.extend_from_slice(b".\r\n");
    out
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("smtp_command_parse");
    g.throughput(Throughput::Elements(LINES.len() as u64));
    g.bench_function("typical_transaction_lines", |b| {
        b.iter(|| {
            for line in LINES {
                let _ = black_box(command::parse(black_box(line)));
            }
        })
    });
    g.finish();
}

fn unstuff(c: &mut Criterion) {
    let mb = stuffed_content(1 << 20);
    let mut g = c.benchmark_group("smtp_data_unstuff");
    g.throughput(Throughput::Bytes(mb.len() as u64));
    for chunk in [1460usize, 64 * 1024] {
        g.bench_function(format!("1MiB_in_{chunk}B_reads"), |b| {
            b.iter(|| {
                let mut r = DataReceiver::new(50 << 20, 1000);
                for piece in mb.chunks(chunk) {
                    if let DataProgress::Done { .. } = r.feed(piece) {
                        break;
                    }
                }
                black_box(r.finish().unwrap().len())
            })
        });
    }
    g.finish();
}

/// Drives a session through EHLO, MAIL, RCPT, DATA (2 KiB) and QUIT,
/// accepting everything, as the server's driver does minus the I/O.
fn transaction(c: &mut Criterion) {
    let mut input =
        b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<bench1@bench.test>\r\nDATA\r\n".to_vec();
    input.extend_from_slice(&stuffed_content(2048));
    input.extend_from_slice(b"QUIT\r\n");
    let mut g = c.benchmark_group("smtp_session");
    g.throughput(Throughput::Elements(1));
    g.bench_function("transaction_2KiB", |b| {
        b.iter_batched(
            || {
                let info = SessionInfo::new("b", Service::Smtp, "127.0.0.1".parse().unwrap(), 1);
                SmtpSession::new(SmtpConfig::default(), info)
            },
            |mut s| {
                s.feed(&input);
                let mut out = 0;
                let now = Instant::now();
                loop {
                    match s.next_event(now) {
                        SmtpEvent::NeedInput | SmtpEvent::Close => break,
                        SmtpEvent::Message(content) => {
                            black_box(&content);
                            s.reply(Reply::new(250, "2.0.0", "Ok: queued"));
                        }
                        _ => s.verdict(Verdict::Accept),
                    }
                    out += s.take_output().len();
                }
                out + s.take_output().len()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, parse, unstuff, transaction);
criterion_main!(benches);
