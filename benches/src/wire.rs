//! Line-oriented reading over one TCP connection. Every protocol here is
//! CRLF-framed; the reader keeps one buffer so pipelined replies that arrive
//! in one segment are not lost between calls.

use anyhow::{Context, Result, bail};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Wire {
    stream: BufReader<TcpStream>,
    timeout: Duration,
}

/// One SMTP reply: the code and every line's text (after `NNN-` / `NNN `).
#[derive(Debug, Clone)]
pub struct SmtpReply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl SmtpReply {
    pub fn is_ok(&self) -> bool {
        (200..400).contains(&self.code)
    }
}

impl Wire {
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Wire> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .with_context(|| format!("connect to {addr}: timeout"))?
            .with_context(|| format!("connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        Ok(Wire { stream: BufReader::with_capacity(64 * 1024, tcp), timeout })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        tokio::time::timeout(self.timeout, self.stream.get_mut().write_all(bytes))
            .await
            .context("write: timeout")??;
        Ok(())
    }

    /// Appends one line (with its LF) to `line`; errors on EOF.
    pub async fn read_line_into(&mut self, line: &mut Vec<u8>) -> Result<()> {
        let n = tokio::time::timeout(self.timeout, self.stream.read_until(b'\n', line))
            .await
            .context("read: timeout")??;
        if n == 0 {
            bail!("connection closed by server");
        }
        Ok(())
    }

    pub async fn read_line(&mut self) -> Result<Vec<u8>> {
        let mut line = Vec::with_capacity(128);
        self.read_line_into(&mut line).await?;
        Ok(line)
    }

    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0; n];
        tokio::time::timeout(self.timeout, self.stream.read_exact(&mut buf)).await.context("read: timeout")??;
        Ok(buf)
    }

    /// Reads a (possibly multi-line) SMTP reply (RFC 5321 4.2.1).
    pub async fn smtp_reply(&mut self) -> Result<SmtpReply> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line().await?;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let code: u16 =
                text.get(..3).and_then(|c| c.parse().ok()).with_context(|| format!("bad SMTP reply {text:?}"))?;
            lines.push(text.get(4..).unwrap_or("").to_string());
            if text.as_bytes().get(3) != Some(&b'-') {
                return Ok(SmtpReply { code, lines });
            }
        }
    }

    /// Reads a POP3 status line; errors unless it is `+OK`.
    pub async fn pop3_ok(&mut self, what: &str) -> Result<String> {
        let line = self.read_line().await?;
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if !text.starts_with("+OK") {
            bail!("POP3 {what}: {text}");
        }
        Ok(text)
    }

    /// Reads a POP3 multi-line body up to the terminating `.` line; returns
    /// its length in octets as sent (byte-stuffed, without the terminator).
    pub async fn pop3_multiline(&mut self) -> Result<usize> {
        let mut total = 0;
        let mut line = Vec::with_capacity(1024);
        loop {
            line.clear();
            self.read_line_into(&mut line).await?;
            if line == b".\r\n" || line == b".\n" {
                return Ok(total);
            }
            total += line.len();
        }
    }
}
