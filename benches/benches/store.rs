//! Store costs: accepting a 2.5 KB message into one mailbox (durable: the
//! call returns after its commit group is on disk), alone and with 20
//! concurrent writers sharing commit groups; reading it back; listing a
//! mailbox; its UID set; a plugin's kv counter increment and read, as a
//! rate-limit plugin makes them for each message, awaited on a
//! two-worker runtime as the server's sessions await them.

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use ferrymail_store::schema::{Filing, INBOX_ID};
use ferrymail_store::{Incoming, SharedStore};
use tokio::runtime::Runtime;

fn open(rt: &Runtime) -> (tempfile::TempDir, SharedStore, u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = ferrymail_store::open_embedded(dir.path(), Default::default()).unwrap();
    let account = rt.block_on(store.add_account("bench1@bench.test", "hash")).unwrap().id;
    (dir, store, account)
}

fn content() -> Bytes {
    let mut m = b"Received: from client.test\r\nSubject: bench\r\n\r\n".to_vec();
    m.resize(2_500 - 2, b'x');
    m.extend_from_slice(b"\r\n");
    Bytes::from(m)
}

async fn accept(store: &SharedStore, account: u64, content: &Bytes) {
    let id = store.new_id().await.unwrap();
    let incoming = Incoming {
        id,
        content: content.clone(),
        return_path: "a@client.test".into(),
        local: vec![Filing::inbox(account)],
        queue: None,
        summary: None,
        traces: Vec::new(),
    };
    store.accept(incoming).await.unwrap();
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn append(c: &mut Criterion) {
    let rt = runtime();
    let (_dir, store, account) = open(&rt);
    let msg = content();
    let mut g = c.benchmark_group("store_append");
    g.sample_size(10);
    // One writer at a time: the worst case for group commit (one flush per message).
    g.throughput(Throughput::Elements(1));
    g.bench_function("accept_2500B_durable_single_writer", |b| b.iter(|| rt.block_on(accept(&store, account, &msg))));
    // Twenty writers at once, as twenty SMTP sessions: they share flushes.
    g.throughput(Throughput::Elements(20));
    g.bench_function("accept_2500B_durable_20_writers", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..20)
                    .map(|_| {
                        let (store, msg) = (store.clone(), msg.clone());
                        tokio::spawn(async move { accept(&store, account, &msg).await })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let rt = runtime();
    let (_dir, store, account) = open(&rt);
    let msg = content();
    for _ in 0..1_000 {
        rt.block_on(accept(&store, account, &msg));
    }
    let entries = rt.block_on(store.all_entries(account, INBOX_ID)).unwrap();
    let mut g = c.benchmark_group("store_read");
    g.throughput(Throughput::Elements(1));
    g.bench_function("read_message_2500B", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % entries.len();
            black_box(rt.block_on(store.read_message(&entries[i])).unwrap().len())
        })
    });
    g.bench_function("uid_set_1000", |b| {
        b.iter(|| black_box(rt.block_on(store.uids(account, INBOX_ID)).unwrap().len()))
    });
    g.throughput(Throughput::Elements(entries.len() as u64));
    g.bench_function("mailbox_entries_1000", |b| {
        b.iter_batched(
            || (),
            |_| black_box(rt.block_on(store.all_entries(account, INBOX_ID)).unwrap().len()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn kv(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = ferrymail_store::open_embedded(dir.path(), Default::default()).unwrap();
    let mut g = c.benchmark_group("store_kv");
    g.throughput(Throughput::Elements(1));
    let mut n = 0u32;
    g.bench_function("kv_incr_counter", |b| {
        b.iter(|| {
            // 100 senders' counters, as a rate limit keeps them.
            n = n.wrapping_add(1);
            let key = format!("rate/{}", n % 100);
            rt.block_on(async {
                black_box(store.kv_incr("g/p:rate-limit", key.as_bytes(), 1, Some(60)).await.unwrap())
            })
        })
    });
    g.bench_function("kv_get", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let key = format!("rate/{}", n % 100);
            rt.block_on(async { black_box(store.kv_get("g/p:rate-limit", key.as_bytes()).await.unwrap()) })
        })
    });
    g.finish();
}

criterion_group!(benches, append, read, kv);
criterion_main!(benches);
