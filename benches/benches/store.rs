//! Store costs: accepting a 2.5 KB message into one mailbox (in memory, and
//! made durable with its fsync), reading it back, listing a mailbox.

use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use ferrymail_store::{Incoming, Store, schema::INBOX_ID};

fn open() -> (tempfile::TempDir, Store, u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &Default::default()).unwrap();
    let account = store.add_account("bench1@bench.test", "hash").unwrap().id;
    (dir, store, account)
}

fn content() -> Vec<u8> {
    let mut m = b"Received: from client.test\r\nSubject: bench\r\n\r\n".to_vec();
    m.resize(2_500 - 2, b'x');
    m.extend_from_slice(b"\r\n");
    m
}

fn accept(store: &Store, account: u64, content: &[u8]) {
    let id = store.new_id().unwrap();
    store.accept(&Incoming { id, content, return_path: "a@client.test", local: &[account], queue: None }).unwrap();
}

fn append(c: &mut Criterion) {
    let (_dir, store, account) = open();
    let msg = content();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut g = c.benchmark_group("store_append");
    g.throughput(Throughput::Elements(1));
    g.bench_function("accept_2500B_one_mailbox", |b| b.iter(|| accept(&store, account, &msg)));
    // One writer at a time: the worst case for group commit (one fsync per message).
    g.sample_size(10);
    g.bench_function("accept_2500B_durable_single_writer", |b| {
        b.iter(|| {
            accept(&store, account, &msg);
            rt.block_on(store.durable()).unwrap();
        })
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let (_dir, store, account) = open();
    let msg = content();
    for _ in 0..1_000 {
        accept(&store, account, &msg);
    }
    let entries = store.mailbox_entries(account, INBOX_ID).unwrap();
    let mut g = c.benchmark_group("store_read");
    g.throughput(Throughput::Elements(1));
    g.bench_function("read_mail_2500B", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % entries.len();
            black_box(store.read_mail(&entries[i]).unwrap().len())
        })
    });
    g.throughput(Throughput::Elements(entries.len() as u64));
    g.bench_function("mailbox_entries_1000", |b| {
        b.iter_batched(
            || (),
            |_| black_box(store.mailbox_entries(account, INBOX_ID).unwrap().len()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
