//! The control socket inside the server.

use super::{Request, Response};
use crate::state::ServerState;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

/// Listens on `path` (mode 0600 via the data_dir's permissions); reload
/// requests are forwarded to `reload` and answered with its outcome.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    // A stale socket from a killed server would block the bind.
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path)
        .map_err(|e| anyhow::anyhow!("data_dir: cannot create control socket {}: {e}", path.display()))
}

pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<String, String>>;

pub async fn serve(listener: UnixListener, state: Arc<ServerState>, reload: mpsc::Sender<ReloadRequest>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        // Who is asking, from the kernel: recorded with local submissions.
        let peer_uid = stream.peer_cred().ok().map(|c| c.uid());
        let state = state.clone();
        let reload = reload.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let response = match serde_json::from_str::<Request>(&line) {
                    Ok(Request::Reload) => {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        let _ = reload.send(tx).await;
                        match rx.await {
                            Ok(Ok(msg)) => Response::ok(vec![msg]),
                            Ok(Err(msg)) => Response::err(msg),
                            Err(_) => Response::err("reload did not complete"),
                        }
                    }
                    Ok(Request::Submit(mut submission)) => {
                        submission.uid = peer_uid;
                        match crate::sendmail::pickup::submit(&state, &submission).await {
                            Ok(id) => Response::ok(vec![format!("queued as {id}")]),
                            Err(crate::sendmail::pickup::Refused::Temporary(why)) => {
                                Response::err(format!("temporary: {why}"))
                            }
                            Err(crate::sendmail::pickup::Refused::Permanent(why)) => {
                                Response::err(format!("permanent: {why}"))
                            }
                        }
                    }
                    Ok(request) => {
                        let response = super::execute_queue(&*state.store, Some(&state.outbound), &request).await;
                        // A flushed or bounced entry is due now.
                        state.queue_wake.notify_one();
                        response
                    }
                    Err(e) => Response::err(format!("bad request: {e}")),
                };
                let mut json = serde_json::to_vec(&response).unwrap_or_default();
                json.push(b'\n');
                if write.write_all(&json).await.is_err() {
                    break;
                }
            }
        });
    }
}
