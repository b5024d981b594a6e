//! The milter protocol, version 6 (Sendmail's libmilter, as Postfix and
//! rspamd/OpenDKIM speak it), sans I/O: [`encode`] turns a command into
//! packet bytes, [`Decoder`] turns received bytes into responses.
//!
//! A packet is a 4-byte big-endian length (of what follows), one command
//! byte, then the data; strings are NUL-terminated. There is no RFC: the
//! reference is libmilter's `mfdef.h` and Postfix's `milter8.c`.

use std::fmt;

pub const VERSION: u32 = 6;

/// Actions we let a milter take (SMFIF_*): header edits and quarantine.
/// Body replacement and recipient changes are not offered, so a milter
/// never asks for them.
pub mod action {
    pub const ADDHDRS: u32 = 0x01;
    pub const CHGHDRS: u32 = 0x10;
    pub const QUARANTINE: u32 = 0x20;
}

/// Protocol flags (SMFIP_*): steps a milter may ask us to skip (NO*) or
/// not to wait for a reply to (NR_*).
pub mod proto {
    pub const NOCONNECT: u32 = 0x1;
    pub const NOHELO: u32 = 0x2;
    pub const NOMAIL: u32 = 0x4;
    pub const NORCPT: u32 = 0x8;
    pub const NOBODY: u32 = 0x10;
    pub const NOHDRS: u32 = 0x20;
    pub const NOEOH: u32 = 0x40;
    pub const NR_HDR: u32 = 0x80;
    pub const NOUNKNOWN: u32 = 0x100;
    pub const NODATA: u32 = 0x200;
    pub const SKIP: u32 = 0x400;
    pub const NR_CONN: u32 = 0x1000;
    pub const NR_HELO: u32 = 0x2000;
    pub const NR_MAIL: u32 = 0x4000;
    pub const NR_RCPT: u32 = 0x8000;
    pub const NR_DATA: u32 = 0x10000;
    pub const NR_EOH: u32 = 0x40000;
    pub const NR_BODY: u32 = 0x80000;
    /// Everything we can honour (not HDR_LEADSPC, RCPT_REJ, NR_UNKN).
    pub const OFFERED: u32 = NOCONNECT
        | NOHELO
        | NOMAIL
        | NORCPT
        | NOBODY
        | NOHDRS
        | NOEOH
        | NR_HDR
        | NOUNKNOWN
        | NODATA
        | SKIP
        | NR_CONN
        | NR_HELO
        | NR_MAIL
        | NR_RCPT
        | NR_DATA
        | NR_EOH
        | NR_BODY;
}

/// Body chunks are at most this long (libmilter's MILTER_CHUNK_SIZE).
pub const BODY_CHUNK: usize = 65535;
/// A response longer than this is a broken or hostile milter.
pub const MAX_PACKET: usize = 1 << 20;

/// The client's address family in SMFIC_CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Inet4,
    Inet6,
    Unknown,
}

/// What the MTA sends (SMFIC_*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// 'O': version, the actions we allow, the protocol flags we honour.
    OptNeg { version: u32, actions: u32, protocol: u32 },
    /// 'D': macros for the next command (its letter), name/value pairs.
    Macro { stage: u8, pairs: &'a [(&'a str, &'a str)] },
    /// 'C': the client's name, family, port and address.
    Connect { hostname: &'a str, family: Family, port: u16, address: &'a str },
    /// 'H': the HELO argument.
    Helo(&'a str),
    /// 'M': "<sender>" then ESMTP arguments.
    Mail(&'a [&'a str]),
    /// 'R': "<recipient>" then ESMTP arguments.
    Rcpt(&'a [&'a str]),
    /// 'T': DATA was given.
    Data,
    /// 'L': one header field, name and (unfolded or raw) value.
    Header { name: &'a str, value: &'a str },
    /// 'N': end of the header section.
    EndOfHeaders,
    /// 'B': a piece of the body.
    Body(&'a [u8]),
    /// 'E': end of the message; the milter's modifications follow.
    EndOfBody,
    /// 'A': forget the current message, keep the connection.
    Abort,
    /// 'Q': close the connection.
    Quit,
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    // A NUL inside would end the string early: the milter would read the
    // rest as the next field. Client-controlled text never carries one
    // here (SMTP lines have none), but make sure.
    out.extend(s.bytes().filter(|&b| b != 0));
    out.push(0);
}

/// The packet for `cmd`.
pub fn encode(cmd: &Command<'_>) -> Vec<u8> {
    let mut data = Vec::new();
    let code = match cmd {
        Command::OptNeg { version, actions, protocol } => {
            for v in [version, actions, protocol] {
                data.extend_from_slice(&v.to_be_bytes());
            }
            b'O'
        }
        Command::Macro { stage, pairs } => {
            data.push(*stage);
            for (n, v) in pairs.iter() {
                cstr(&mut data, n);
                cstr(&mut data, v);
            }
            b'D'
        }
        Command::Connect { hostname, family, port, address } => {
            cstr(&mut data, hostname);
            match family {
                Family::Unknown => data.push(b'U'),
                f => {
                    data.push(if *f == Family::Inet4 { b'4' } else { b'6' });
                    data.extend_from_slice(&port.to_be_bytes());
                    cstr(&mut data, address);
                }
            }
            b'C'
        }
        Command::Helo(name) => {
            cstr(&mut data, name);
            b'H'
        }
        Command::Mail(args) | Command::Rcpt(args) => {
            for a in args.iter() {
                cstr(&mut data, a);
            }
            if matches!(cmd, Command::Mail(_)) { b'M' } else { b'R' }
        }
        Command::Data => b'T',
        Command::Header { name, value } => {
            cstr(&mut data, name);
            cstr(&mut data, value);
            b'L'
        }
        Command::EndOfHeaders => b'N',
        Command::Body(chunk) => {
            data.extend_from_slice(chunk);
            b'B'
        }
        Command::EndOfBody => b'E',
        Command::Abort => b'A',
        Command::Quit => b'Q',
    };
    let mut out = Vec::with_capacity(5 + data.len());
    out.extend_from_slice(&(data.len() as u32 + 1).to_be_bytes());
    out.push(code);
    out.extend_from_slice(&data);
    out
}

/// What a milter answers (SMFIR_*), and the option negotiation reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    /// 'c': go on.
    Continue,
    /// 'a': accept the message, no more questions.
    Accept,
    /// 'r': refuse (5xx, our default text).
    Reject,
    /// 't': refuse for now (4xx).
    Tempfail,
    /// 'd': accept and drop.
    Discard,
    /// 'y': refuse with this reply ("550 5.7.1 text").
    ReplyCode(String),
    /// 'p': still working, wait on.
    Progress,
    /// 's': send no more body chunks.
    Skip,
    /// 'h': append a header field.
    AddHeader {
        name: String,
        value: String,
    },
    /// 'i': insert a header field at `index` (0: first).
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// 'm': change the `index`th (1-based) field called `name`; an empty
    /// value deletes it.
    ChangeHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// 'q': quarantine, with a reason.
    Quarantine(String),
    /// Anything else (body or recipient changes we did not offer).
    Other(u8),
}

/// The milter broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "milter protocol error: {}", self.0)
    }
}

/// Reassembles responses from whatever bytes arrived.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole response, `None` until one has arrived.
    pub fn decode(&mut self) -> Result<Option<Response>, ProtocolError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len == 0 || len > MAX_PACKET {
            return Err(ProtocolError(format!("packet length {len}")));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let packet: Vec<u8> = self.buf.drain(..4 + len).skip(4).collect();
        parse(packet[0], &packet[1..]).map(Some)
    }
}

fn parse(code: u8, data: &[u8]) -> Result<Response, ProtocolError> {
    let u32_at = |i: usize| -> Result<u32, ProtocolError> {
        data.get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| ProtocolError(format!("'{}' too short", code as char)))
    };
    Ok(match code {
        b'O' => Response::OptNeg { version: u32_at(0)?, actions: u32_at(4)?, protocol: u32_at(8)? },
        b'c' => Response::Continue,
        b'a' => Response::Accept,
        b'r' => Response::Reject,
        b't' => Response::Tempfail,
        b'd' => Response::Discard,
        b'p' => Response::Progress,
        b's' => Response::Skip,
        b'y' => Response::ReplyCode(strings(data, 1)?.remove(0)),
        b'h' => {
            let mut s = strings(data, 2)?;
            let value = s.pop().unwrap_or_default();
            Response::AddHeader { name: s.pop().unwrap_or_default(), value }
        }
        b'i' | b'm' => {
            let index = u32_at(0)?;
            let mut s = strings(&data[4..], 2)?;
            let value = s.pop().unwrap_or_default();
            let name = s.pop().unwrap_or_default();
            match code {
                b'i' => Response::InsertHeader { index, name, value },
                _ => Response::ChangeHeader { index, name, value },
            }
        }
        b'q' => Response::Quarantine(strings(data, 1)?.remove(0)),
        other => Response::Other(other),
    })
}

/// `n` NUL-terminated strings (a missing last NUL is tolerated).
fn strings(data: &[u8], n: usize) -> Result<Vec<String>, ProtocolError> {
    let mut parts: Vec<String> =
        data.split(|&b| b == 0).take(n).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
    if parts.len() < n {
        return Err(ProtocolError(format!("expected {n} strings")));
    }
    parts.truncate(n);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u8, data: &[u8]) -> Vec<u8> {
        let mut p = ((data.len() + 1) as u32).to_be_bytes().to_vec();
        p.push(code);
        p.extend_from_slice(data);
        p
    }

    #[test]
    fn optneg_is_version_actions_protocol_big_endian() {
        let p = encode(&Command::OptNeg { version: 6, actions: 0x31, protocol: 0x1ff });
        assert_eq!(p, packet(b'O', &[0, 0, 0, 6, 0, 0, 0, 0x31, 0, 0, 1, 0xff]));
    }

    #[test]
    fn connect_carries_name_family_port_and_address() {
        let p =
            encode(&Command::Connect { hostname: "mx.example", family: Family::Inet4, port: 25, address: "192.0.2.1" });
        assert_eq!(p, packet(b'C', b"mx.example\x004\x00\x19192.0.2.1\x00"));
        let u = encode(&Command::Connect { hostname: "x", family: Family::Unknown, port: 0, address: "" });
        assert_eq!(u, packet(b'C', b"x\x00U"));
    }

    #[test]
    fn helo_mail_rcpt_are_nul_terminated_strings() {
        assert_eq!(encode(&Command::Helo("client.test")), packet(b'H', b"client.test\x00"));
        assert_eq!(encode(&Command::Mail(&["<a@b>", "SIZE=10"])), packet(b'M', b"<a@b>\x00SIZE=10\x00"));
        assert_eq!(encode(&Command::Rcpt(&["<c@d>"])), packet(b'R', b"<c@d>\x00"));
    }

    #[test]
    fn a_nul_in_client_text_cannot_split_a_field() {
        assert_eq!(encode(&Command::Helo("a\0b")), packet(b'H', b"ab\x00"));
    }

    #[test]
    fn data_header_eoh_body_eob_abort_quit() {
        assert_eq!(encode(&Command::Data), packet(b'T', b""));
        assert_eq!(encode(&Command::Header { name: "Subject", value: "hi" }), packet(b'L', b"Subject\x00hi\x00"));
        assert_eq!(encode(&Command::EndOfHeaders), packet(b'N', b""));
        assert_eq!(encode(&Command::Body(b"x\r\n")), packet(b'B', b"x\r\n"));
        assert_eq!(encode(&Command::EndOfBody), packet(b'E', b""));
        assert_eq!(encode(&Command::Abort), packet(b'A', b""));
        assert_eq!(encode(&Command::Quit), packet(b'Q', b""));
    }

    #[test]
    fn macros_name_the_stage_they_belong_to() {
        let p = encode(&Command::Macro { stage: b'C', pairs: &[("j", "mx.example"), ("{daemon_name}", "ferrymail")] });
        assert_eq!(p, packet(b'D', b"Cj\x00mx.example\x00{daemon_name}\x00ferrymail\x00"));
    }

    #[test]
    fn responses_arrive_in_pieces_and_are_reassembled() {
        let mut d = Decoder::default();
        let mut bytes = packet(b'p', b"");
        bytes.extend(packet(b'y', b"554 5.7.1 Gtube pattern\x00"));
        bytes.extend(packet(b'c', b""));
        for b in &bytes[..7] {
            d.feed(&[*b]);
        }
        assert_eq!(d.decode().unwrap(), Some(Response::Progress));
        assert_eq!(d.decode().unwrap(), None, "half a packet is not a response");
        d.feed(&bytes[7..]);
        assert_eq!(d.decode().unwrap(), Some(Response::ReplyCode("554 5.7.1 Gtube pattern".into())));
        assert_eq!(d.decode().unwrap(), Some(Response::Continue));
    }

    #[test]
    fn verdict_letters() {
        for (c, r) in [
            (b'c', Response::Continue),
            (b'a', Response::Accept),
            (b'r', Response::Reject),
            (b't', Response::Tempfail),
            (b'd', Response::Discard),
            (b's', Response::Skip),
        ] {
            let mut d = Decoder::default();
            d.feed(&packet(c, b""));
            assert_eq!(d.decode().unwrap(), Some(r));
        }
    }

    #[test]
    fn header_modifications() {
        let mut d = Decoder::default();
        d.feed(&packet(b'h', b"X-Spam\x00Yes\x00"));
        d.feed(&packet(b'i', b"\x00\x00\x00\x00DKIM-Signature\x00v=1; a=rsa-sha256\x00"));
        d.feed(&packet(b'm', b"\x00\x00\x00\x01Subject\x00\x00"));
        d.feed(&packet(b'q', b"suspicious\x00"));
        assert_eq!(d.decode().unwrap(), Some(Response::AddHeader { name: "X-Spam".into(), value: "Yes".into() }));
        assert_eq!(
            d.decode().unwrap(),
            Some(Response::InsertHeader { index: 0, name: "DKIM-Signature".into(), value: "v=1; a=rsa-sha256".into() })
        );
        assert_eq!(
            d.decode().unwrap(),
            Some(Response::ChangeHeader { index: 1, name: "Subject".into(), value: String::new() }),
            "an empty value deletes"
        );
        assert_eq!(d.decode().unwrap(), Some(Response::Quarantine("suspicious".into())));
    }

    #[test]
    fn optneg_reply_and_broken_packets() {
        let mut d = Decoder::default();
        d.feed(&packet(b'O', &[0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0x40]));
        assert_eq!(d.decode().unwrap(), Some(Response::OptNeg { version: 6, actions: 1, protocol: 0x40 }));
        let mut d = Decoder::default();
        d.feed(&[0, 0, 0, 0]);
        assert!(d.decode().is_err(), "a zero length has no command byte");
        let mut d = Decoder::default();
        d.feed(&(MAX_PACKET as u32 + 1).to_be_bytes());
        assert!(d.decode().is_err(), "a huge length is refused before it is buffered");
        let mut d = Decoder::default();
        d.feed(&packet(b'i', b"\x00\x00"));
        assert!(d.decode().is_err(), "a truncated index");
    }
}
