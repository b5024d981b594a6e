//! DATA content: the receiver must give the same result however the input
//! is split into reads (it is resumable), and accepted content never holds
//! a bare CR or LF (RFC 5321 2.3.8), so no smuggled message gets through.
#![no_main]

use ferrymail_proto::smtp::data::{DataProgress, DataReceiver};
use libfuzzer_sys::fuzz_target;

fn run(input: &[u8], cuts: &[usize]) -> (Option<usize>, Result<Vec<u8>, ferrymail_proto::smtp::data::DataError>) {
    let mut r = DataReceiver::new(64 * 1024, 1000);
    let mut start = 0;
    let mut done = None;
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        let end = end.clamp(start, input.len());
        if let DataProgress::Done { consumed } = r.feed(&input[start..end]) {
            done = Some(start + consumed);
            break;
        }
        start = end;
    }
    (done, r.finish())
}

fuzz_target!(|data: &[u8]| {
    // First byte picks the split points, the rest is the stream.
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(seed % 31) + 1;
    let cuts: Vec<usize> = (step..input.len()).step_by(step).collect();
    let whole = run(input, &[]);
    let split = run(input, &cuts);
    assert_eq!(whole, split, "result depends on how the input was split");
    if let (Some(end), Ok(content)) = (whole.0, &whole.1) {
        assert!(input[..end].ends_with(b"\r\n.\r\n") || end == 3 && &input[..3] == b".\r\n");
        for (i, &b) in content.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && content[i - 1] == b'\r', "bare LF accepted");
            }
            if b == b'\r' {
                assert_eq!(content.get(i + 1), Some(&b'\n'), "bare CR accepted");
            }
        }
    }
});
