//! The metrics endpoint: `GET /metrics` (Prometheus text exposition format
//! 0.0.4) and `GET /healthz` (200 when the store takes writes and every
//! listener is accepting, else 503 saying which is not), over HTTP/1.1
//! with hyper. Anything else is 404. Meant for loopback or a monitoring
//! network: it has no authentication.

use super::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{Encoder, TextEncoder};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A whole exchange (request, scrape, response) must fit in this.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);
/// The request head must arrive within this.
const HEADER_DEADLINE: Duration = Duration::from_secs(10);

/// Listeners expected and accepting, for `/healthz`.
#[derive(Default)]
pub struct Listeners {
    expected: AtomicUsize,
    up: AtomicUsize,
}

impl Listeners {
    pub fn expect(&self, n: usize) {
        self.expected.store(n, Ordering::Relaxed);
    }

    /// One listener accepts until the guard drops.
    pub fn up(self: &Arc<Self>) -> ListenerUp {
        self.up.fetch_add(1, Ordering::Relaxed);
        ListenerUp(self.clone())
    }

    fn counts(&self) -> (usize, usize) {
        (self.up.load(Ordering::Relaxed), self.expected.load(Ordering::Relaxed))
    }
}

pub struct ListenerUp(Arc<Listeners>);

impl Drop for ListenerUp {
    fn drop(&mut self) {
        self.0.up.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the endpoint reads.
#[derive(Clone)]
pub struct Endpoint {
    pub metrics: &'static Metrics,
    pub store: ferrymail_store::SharedStore,
    pub listeners: Arc<Listeners>,
}

/// Serves until `shutdown` flips.
pub async fn serve(endpoint: Endpoint, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(service = "metrics", listen = %local, "listening");
    loop {
        let (tcp, _) = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(service = "metrics", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let endpoint = endpoint.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&endpoint, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_DEADLINE)
                .serve_connection(TokioIo::new(tcp), service);
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, conn).await;
        });
    }
}

async fn answer(endpoint: &Endpoint, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/metrics" => metrics(endpoint).await,
        "/healthz" => health(endpoint).await,
        _ => text(StatusCode::NOT_FOUND, "not found: try /metrics or /healthz\n".into()),
    }
}

async fn metrics(endpoint: &Endpoint) -> Response<Full<Bytes>> {
    super::queue::refresh(endpoint.metrics, &endpoint.store).await;
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    if let Err(e) = encoder.encode(&endpoint.metrics.registry.gather(), &mut body) {
        return text(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics failed: {e}\n"));
    }
    Response::builder()
        .header(hyper::header::CONTENT_TYPE, encoder.format_type())
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// The kv key the health probe writes: outside every plugin namespace
/// (those start with `t:` or `g/`).
const PROBE_NAMESPACE: &str = "ferrymail/health";

async fn health(endpoint: &Endpoint) -> Response<Full<Bytes>> {
    let now = ferrymail_store::now_secs().to_be_bytes();
    let store = match endpoint.store.kv_set(PROBE_NAMESPACE, b"probe", &now, Some(3600)).await {
        Ok(()) => Ok(()),
        Err(e) => Err(format!("store: not writable: {e}")),
    };
    let (up, expected) = endpoint.listeners.counts();
    let mut body = String::new();
    match &store {
        Ok(()) => body.push_str("store: writable\n"),
        Err(e) => body.push_str(&format!("{e}\n")),
    }
    body.push_str(&format!("listeners: {up} of {expected} accepting\n"));
    let ok = store.is_ok() && up >= expected;
    body.insert_str(0, if ok { "ok\n" } else { "unhealthy\n" });
    text(if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, body)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
