//! SMTP's counters: replies by class and deciding plugin, messages by
//! result, bytes received.

use super::get;

/// Counts the replies in `output` (bytes about to be written): each reply's
/// last line, `NNN SP` or a bare `NNN`. The plugin that decided since the
/// last write (see [`crate::trace::take_decider`]) is credited with the
/// first reply; the others, and replies no plugin decided, are the host's.
pub fn replies(service: &str, output: &[u8]) {
    let Some(m) = get() else { return };
    let mut decider = crate::trace::take_decider();
    for line in output.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let last_line = line.len() == 3 || line.get(3) == Some(&b' ');
        let class = match line.first() {
            Some(b'2') => "2xx",
            Some(b'3') => "3xx",
            Some(b'4') => "4xx",
            Some(b'5') => "5xx",
            _ => continue,
        };
        if !last_line || !line[..3].iter().all(u8::is_ascii_digit) {
            continue;
        }
        let by = decider.take();
        m.smtp_replies.with_label_values(&[service, class, by.as_deref().unwrap_or("host")]).inc();
    }
}

/// A message at the end of DATA, by the code of its final reply.
pub fn message(service: &str, code: u16) {
    if let Some(m) = get() {
        let result = match code / 100 {
            2 => "accepted",
            4 => "temp_failed",
            _ => "refused",
        };
        m.messages.with_label_values(&[service, result]).inc();
    }
}

pub fn received(service: &str, bytes: usize) {
    if let Some(m) = get() {
        m.received_bytes.with_label_values(&[service]).inc_by(bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_last_lines_of_replies_count() {
        let out = b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n550 5.7.1 no\r\n354 go ahead\r\n";
        let finals: Vec<&[u8]> = out
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| l.len() == 3 || l.get(3) == Some(&b' '))
            .collect();
        assert_eq!(finals.len(), 3);
    }
}
