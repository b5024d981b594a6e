//! What mail authentication costs per message: a DKIM signature on a
//! 2.5 KB submission (ed25519 and rsa2048, the server's own signer), and
//! the whole inbound check of one message (SPF on MAIL FROM and HELO, the
//! DKIM signature, DMARC, the `Authentication-Results` field) with warm
//! DNS: the server's resolver, its cache filled by the first run, asking
//! a loopback DNS server of this file that answers from a fixed zone.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use ferrymail::config::DnsConfig;
use ferrymail::dns::Dns;
use ferrymail::mailauth::keys::{self, ActiveKey, Algorithm, Keys};
use ferrymail::mailauth::{sign, verify};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;

const DOMAIN: &str = "shop.test";
const CLIENT: &str = "192.0.2.7";
const HELO: &str = "out.shop.test";

/// A 2.5 KB message from `shop.test`, as a submission arrives.
fn message() -> Vec<u8> {
    let mut m = format!(
        "Received: from client.test ([{CLIENT}])\r\n\tby mx.bench.test; Thu, 3 Dec 2026 06:00:00 +0000\r\n\
         From: News <news@{DOMAIN}>\r\nTo: <bench1@bench.test>\r\nSubject: this week's offers\r\n\
         Date: Thu, 3 Dec 2026 06:00:00 +0000\r\nMessage-ID: <bench@{DOMAIN}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    .into_bytes();
    while m.len() < 2_500 {
        m.extend_from_slice(b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n");
    }
    m
}

/// An active key of `DOMAIN` under `selector`, made as `dkim keygen` makes it.
fn key(dir: &std::path::Path, selector: &str, algorithm: Algorithm) -> (Arc<ActiveKey>, keys::KeyInfo) {
    let root = dir.join(selector);
    let info = keys::generate(&root, DOMAIN, selector, algorithm).unwrap();
    (Keys::new(root).active(DOMAIN).unwrap(), info)
}

/// Queries the loopback DNS server answered: none may happen while the
/// warm check is measured.
static QUERIES: AtomicUsize = AtomicUsize::new(0);

/// Answers TXT queries from `zone` (name without the final dot), NXDOMAIN
/// otherwise; one UDP socket on loopback.
async fn serve_dns(zone: HashMap<String, String>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            QUERIES.fetch_add(1, Ordering::Relaxed);
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            let mut reply = Message::error_msg(query.id(), query.op_code(), ResponseCode::NoError);
            reply.set_message_type(MessageType::Response).set_recursion_available(true);
            reply.add_queries(query.queries().iter().cloned());
            if let Some(q) = query.queries().first() {
                let name = q.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
                match (zone.get(&name), q.query_type()) {
                    (Some(text), RecordType::TXT) => {
                        // One record; DNS strings hold 255 octets at most.
                        let strings = text.as_bytes().chunks(255).map(|c| String::from_utf8_lossy(c).into_owned());
                        let txt = RData::TXT(TXT::new(strings.collect()));
                        reply.add_answer(Record::from_rdata(q.name().clone(), 3600, txt));
                    }
                    (Some(_), _) => {}
                    (None, _) => {
                        reply.set_response_code(ResponseCode::NXDomain);
                    }
                }
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    addr
}

fn bench(c: &mut Criterion) {
    let rt: Runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ed, ed_info) = key(dir.path(), "ed", Algorithm::Ed25519);
    let (rsa, rsa_info) = key(dir.path(), "rsa", Algorithm::Rsa2048);
    let msg = message();

    let mut g = c.benchmark_group("dkim_sign");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ed25519_2500B", |b| b.iter(|| sign::signature(&ed, black_box(&msg)).unwrap()));
    g.bench_function("rsa2048_2500B", |b| b.iter(|| sign::signature(&rsa, black_box(&msg)).unwrap()));
    g.finish();

    let zone = HashMap::from([
        (DOMAIN.to_string(), format!("v=spf1 ip4:{CLIENT} -all")),
        (HELO.to_string(), format!("v=spf1 ip4:{CLIENT} -all")),
        (format!("_dmarc.{DOMAIN}"), "v=DMARC1; p=reject".to_string()),
        (ed_info.record_name(), ed_info.txt.clone()),
        (rsa_info.record_name(), rsa_info.txt.clone()),
    ]);
    let server = rt.block_on(serve_dns(zone));
    let dns = Dns::new(DnsConfig { nameservers: vec![server], timeout: Duration::from_secs(2), reverse_lookup: false });
    let auth = mail_auth::MessageAuthenticator(dns.resolver().unwrap().clone());
    let tx = verify::Transaction {
        hostname: "mx.bench.test",
        client_ip: CLIENT.parse::<IpAddr>().unwrap(),
        helo: HELO,
        mail_from: "bounces@shop.test",
    };
    let signed = |key: &ActiveKey| {
        let mut m = sign::signature(key, &msg).unwrap().into_bytes();
        m.extend_from_slice(&msg);
        m
    };
    let mut g = c.benchmark_group("mail_auth_verify_warm_dns");
    g.throughput(Throughput::Elements(1));
    for (name, key) in [("ed25519_2500B", &ed), ("rsa2048_2500B", &rsa)] {
        let m = signed(key);
        // The first run fills the resolver's cache, and proves the path
        // measured is the passing one.
        let first = rt.block_on(verify::check(&auth, &tx, &m, Duration::from_secs(5)));
        for want in ["spf=pass", "dkim=pass", "dmarc=pass"] {
            assert!(first.summary.contains(want), "{name}: {}", first.summary);
        }
        let asked = QUERIES.load(Ordering::Relaxed);
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(verify::check(&auth, &tx, black_box(&m), Duration::from_secs(5))))
        });
        // Warm means warm: a look-up during the measurement would time
        // the loopback DNS server too.
        assert_eq!(QUERIES.load(Ordering::Relaxed), asked, "{name}: DNS asked while measuring");
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
