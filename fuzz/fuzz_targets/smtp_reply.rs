//! The SMTP client's reply parser fed what a hostile server might send, in
//! arbitrary reads: it must never panic, never return more replies than
//! lines, keep every code in 200–599 and every text free of control
//! characters (the text reaches logs and DSNs), and give the same replies
//! however the input is split (it is resumable).
#![no_main]

use ferrymail_proto::client::ReplyParser;
use libfuzzer_sys::fuzz_target;

fn parse(input: &[u8], chunk: usize) -> Vec<String> {
    let mut p = ReplyParser::default();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        p.feed(piece);
        while let Some(reply) = p.next_reply() {
            match reply {
                Ok(r) => {
                    assert!((200..600).contains(&r.code), "code {}", r.code);
                    assert!(!r.text.chars().any(|c| c.is_control() && c != '\n'), "control in {:?}", r.text);
                    if let Some(e) = &r.enhanced {
                        assert!(e.bytes().all(|b| b.is_ascii_digit() || b == b'.'), "enhanced {e:?}");
                    }
                    out.push(format!("{r:?}"));
                }
                Err(e) => {
                    // After an error the connection is dropped: stop here.
                    out.push(format!("error {e}"));
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&knob, input)) = data.split_first() else {
        return;
    };
    let whole = parse(input, input.len().max(1));
    let lines = input.iter().filter(|&&b| b == b'\n').count();
    assert!(whole.len() <= lines + 1);
    let split = parse(input, usize::from(knob % 13) + 1);
    assert_eq!(whole, split, "depends on how the input was split");
});
