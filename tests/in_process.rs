//! The whole server in-process: `server::run` on listeners bound to port 0
//! by the test, stopped by a shutdown future. SMTP → delivery → mailbox →
//! POP3 on one server, and SMTP → queue → outbound SMTP client → a second
//! server → POP3 across two. The Python suite (tests/e2e) drives the binary
//! with real clients; these tests cover the drivers, delivery and the
//! outbound path from Rust, with the real plugin chain and store.

use ferrymail::config::Config;
use ferrymail::control::{self, Request};
use ferrymail::server::{Listeners, Reloads, Server};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every exchange gets this long; a hang fails the test instead of
/// stalling the run.
const STEP: Duration = Duration::from_secs(30);

struct TestServer {
    config: Config,
    smtp: SocketAddr,
    pop3: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server for `domain` with SMTP and POP3 on the given listeners (or
    /// fresh port-0 ones) and the control socket; `extra` is appended to
    /// its configuration file.
    async fn start(domain: &str, smtp: Option<TcpListener>, extra: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        // Compiled plugins are cached by component and engine settings;
        // sharing the e2e suite's cache keeps start-up quick.
        let cache = std::env::temp_dir().join("ferrymail-e2e-plugin-cache");
        let toml = format!(
            r#"
data_dir = {data:?}
hostname = "mx.{domain}"
local_domains = [{domain:?}]
auth_failure_delay = "10ms"
plugin_cache_dir = {cache:?}
[smtp]
listen = []
greet_delay = "0s"
[submission]
listen = []
[pop3]
listen = []
[imap]
listen = []
[dns]
nameservers = ["127.0.0.1:9"]
timeout = "1s"
{extra}
"#,
            data = dir.path().join("data").display().to_string(),
            cache = cache.display().to_string(),
        );
        let path = dir.path().join("ferrymail.toml");
        std::fs::write(&path, toml).unwrap();
        let config = Config::load(Some(&path)).unwrap();
        std::fs::create_dir_all(&config.data_dir).unwrap();
        let smtp = match smtp {
            Some(l) => l,
            None => loopback().await,
        };
        let pop3 = loopback().await;
        let addrs = (smtp.local_addr().unwrap(), pop3.local_addr().unwrap());
        let listeners = Listeners {
            smtp: vec![smtp.into()],
            pop3: vec![pop3.into()],
            control: Some(control::server::bind(&config.control_socket()).unwrap()),
            ..Default::default()
        };
        let store = control::client::open_store(&config).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server { config: std::sync::Arc::new(config.clone()), config_path: Some(path), store };
        let task = tokio::spawn(ferrymail::server::run(server, listeners, Reloads::new(), async {
            let _ = stopped.await;
        }));
        TestServer { config, smtp: addrs.0, pop3: addrs.1, stop: Some(stop), task: Some(task), _dir: dir }
    }

    /// Sends `request` over the control socket, as the CLI does.
    async fn control(&self, request: Request) -> control::Response {
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || control::client::to_server(&config, &request))
            .await
            .unwrap()
            .unwrap()
            .expect("the server answers on its control socket")
    }

    async fn add_user(&self, address: &str, password: &str) {
        let password_hash = ferrymail::passwords::hash(password).unwrap();
        let response = self.control(Request::UserAdd { address: address.into(), password_hash }).await;
        assert!(response.ok, "user add: {:?}", response.output);
    }

    /// Stops the server as SIGTERM would and waits for `run` to return.
    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let result = tokio::time::timeout(STEP, self.task.take().unwrap()).await.expect("run returns after shutdown");
        result.unwrap().unwrap();
    }
}

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// A line-based client: sends a line, reads one reply (all of an SMTP
/// multi-line reply).
struct Client {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::time::timeout(STEP, tokio::net::TcpStream::connect(addr)).await.unwrap().unwrap();
        let (read, write) = stream.into_split();
        Client { read: BufReader::new(read), write }
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = tokio::time::timeout(STEP, self.read.read_line(&mut line)).await.expect("reply in time").unwrap();
        assert!(n > 0, "connection closed");
        line
    }

    /// One SMTP reply: lines until one with a space after the code.
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let line = self.line().await;
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn send(&mut self, text: &str) {
        self.write.write_all(text.as_bytes()).await.unwrap();
    }

    /// Sends `line` and expects an SMTP reply starting with `code`.
    async fn smtp(&mut self, line: &str, code: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        let reply = self.reply().await;
        assert!(reply.starts_with(code), "{line} -> {reply}");
        reply
    }

    /// Sends `line` and expects "+OK".
    async fn pop3(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        let reply = self.line().await;
        assert!(reply.starts_with("+OK"), "{line} -> {reply}");
        reply
    }

    /// A POP3 multi-line body up to the terminating dot, dot-unstuffed.
    async fn pop3_body(&mut self) -> String {
        let mut body = String::new();
        loop {
            let line = self.line().await;
            if line == ".\r\n" {
                return body;
            }
            body.push_str(line.strip_prefix('.').unwrap_or(&line));
        }
    }
}

/// Sends one message through SMTP (as a relay-network client).
async fn send_mail(addr: SocketAddr, from: &str, to: &str, body: &str) -> String {
    let mut c = Client::connect(addr).await;
    assert!(c.reply().await.starts_with("220"));
    c.smtp("EHLO client.test", "250").await;
    c.smtp(&format!("MAIL FROM:<{from}>"), "250").await;
    c.smtp(&format!("RCPT TO:<{to}>"), "250").await;
    c.smtp("DATA", "354").await;
    c.send(body).await;
    let queued = c.smtp(".", "250").await;
    c.smtp("QUIT", "221").await;
    queued
}

/// Logs in over POP3 and returns the session with the number of messages.
async fn pop3_login(addr: SocketAddr, user: &str, password: &str) -> (Client, usize) {
    let mut c = Client::connect(addr).await;
    assert!(c.line().await.starts_with("+OK"));
    c.pop3(&format!("USER {user}")).await;
    c.pop3(&format!("PASS {password}")).await;
    let stat = c.pop3("STAT").await;
    let count = stat.split_whitespace().nth(1).unwrap().parse().unwrap();
    (c, count)
}

const MESSAGE: &str =
    "From: <sender@far.test>\r\nSubject: in-process\r\n\r\nHello.\r\n..a line starting with a dot\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_to_mailbox_to_pop3() {
    let server = TestServer::start("here.test", None, "").await;
    server.add_user("alice@here.test", "secret").await;
    send_mail(server.smtp, "sender@far.test", "alice@here.test", MESSAGE).await;

    // RFC 5321 4.4: the 250 means filed; it is in the mailbox at once.
    let (mut c, count) = pop3_login(server.pop3, "alice@here.test", "secret").await;
    assert_eq!(count, 1);
    c.pop3("RETR 1").await;
    let text = c.pop3_body().await;
    assert!(text.starts_with("Return-Path: <sender@far.test>\r\nReceived: from client.test"), "{text}");
    assert!(text.contains("by mx.here.test"), "{text}");
    // Sent dot-stuffed, stored and read back as one dot (RFC 5321 4.5.2).
    assert!(text.ends_with("Subject: in-process\r\n\r\nHello.\r\n.a line starting with a dot\r\n"), "{text}");
    c.pop3("DELE 1").await;
    c.pop3("QUIT").await;

    // RFC 1939 6: DELE takes effect at QUIT (UPDATE state).
    let (mut c, count) = pop3_login(server.pop3, "alice@here.test", "secret").await;
    assert_eq!(count, 0);
    c.pop3("QUIT").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_to_outbound_client_to_a_second_server() {
    // The far server first: the near one's smarthost is its SMTP port.
    let far_listener = loopback().await;
    let far_addr = far_listener.local_addr().unwrap();
    let far = TestServer::start("far.test", Some(far_listener), "").await;
    far.add_user("bob@far.test", "secret").await;
    let near = TestServer::start(
        "near.test",
        None,
        &format!(
            "[delivery]\nstarttls = \"off\"\n[plugins.local]\npath = \"builtin:local\"\nconfig = {{ smarthost = \"{far_addr}\" }}\n"
        ),
    )
    .await;

    // Relayed from loopback (relay_networks), queued for bob@far.test.
    send_mail(near.smtp, "carol@near.test", "bob@far.test", MESSAGE).await;

    // The scheduler is woken by the enqueue; the far server files it.
    let deadline = tokio::time::Instant::now() + STEP;
    let text = loop {
        let (mut c, count) = pop3_login(far.pop3, "bob@far.test", "secret").await;
        if count == 1 {
            c.pop3("RETR 1").await;
            break c.pop3_body().await;
        }
        c.pop3("QUIT").await;
        assert!(tokio::time::Instant::now() < deadline, "not delivered to the far server in {STEP:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Both hops stamped it (RFC 5321 4.4), the far one on top; the dot
    // line survived the client's dot-stuffing (RFC 5321 4.5.2).
    let far_hop = text.find("by mx.far.test").expect("far server's Received");
    let near_hop = text.find("by mx.near.test").expect("near server's Received");
    assert!(far_hop < near_hop, "{text}");
    assert!(text.ends_with("\r\nHello.\r\n.a line starting with a dot\r\n"), "{text}");

    // Delivered: the near server's queue is empty.
    let queue = near.control(Request::QueueList { json: true }).await;
    assert!(queue.ok, "{:?}", queue.output);
    assert!(queue.output.iter().all(|l| !l.contains("bob@far.test")), "{:?}", queue.output);
    near.shutdown().await;
    far.shutdown().await;
}
