//! Operator commands (`ferrymail user …`, `queue …`, `plugin reload`).
//!
//! The embedded store allows one process per store, so while the server runs the CLI
//! sends its command over a Unix socket in `data_dir` and the server
//! executes it; when no server runs, the CLI opens the store itself and
//! executes the same code. Either way one process touches the store.

pub mod client;
pub mod server;
pub mod store_admin;
pub mod store_copy;

use ferrymail_store::{Store, StoreError, schema::INBOX_ID};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    UserAdd {
        address: String,
        password_hash: String,
    },
    UserDel {
        address: String,
    },
    UserList,
    UserPasswd {
        address: String,
        password_hash: String,
    },
    /// Reload configuration and plugins (server only).
    Reload,
    QueueList {
        json: bool,
    },
    QueueShow {
        id: String,
        json: bool,
    },
    /// Try now: one entry, or all.
    QueueFlush {
        id: Option<String>,
    },
    QueueDelete {
        id: String,
    },
    QueueBounce {
        id: String,
    },
    /// The decision trace of a message, session or queue entry.
    Trace {
        id: String,
        json: bool,
    },
    /// A message from `ferrymail sendmail` (server only; without a server
    /// sendmail writes to the maildrop instead).
    Submit(crate::sendmail::pickup::Submission),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// Human-readable lines to print.
    pub output: Vec<String>,
}

impl Response {
    pub fn ok(output: Vec<String>) -> Self {
        Response { ok: true, output }
    }

    pub fn err(msg: impl Into<String>) -> Self {
        Response { ok: false, output: vec![msg.into()] }
    }
}

/// Executes store commands; `Reload` and other server-only commands are
/// answered by the caller. Every change is durable when the store returns.
pub async fn execute_store(store: &dyn Store, request: &Request) -> Response {
    let result: Result<Vec<String>, StoreError> = match request {
        Request::UserAdd { address, password_hash } => {
            store.add_account(address, password_hash).await.map(|a| vec![format!("added {}", a.address)])
        }
        Request::UserDel { address } => {
            store.delete_account(address).await.map(|()| vec![format!("deleted {address}")])
        }
        Request::UserList => match store.accounts().await {
            Ok(accounts) => {
                let mut out = Vec::with_capacity(accounts.len());
                for a in accounts {
                    let n = store.mailbox_by_id(a.id, INBOX_ID).await.ok().flatten().map_or(0, |m| m.messages);
                    out.push(format!("{}\t{} messages", a.address, n));
                }
                Ok(out)
            }
            Err(e) => Err(e),
        },
        Request::UserPasswd { address, password_hash } => {
            store.set_password(address, password_hash).await.map(|()| vec![format!("password changed for {address}")])
        }
        Request::Trace { id, json } => {
            return match crate::trace::report(store, id, *json).await {
                Ok(out) => Response::ok(out),
                Err(e) => Response::err(e),
            };
        }
        Request::Reload => return Response::err("reload needs a running server"),
        Request::Submit(_) => return Response::err("submitting a message needs a running server"),
        Request::QueueList { .. }
        | Request::QueueShow { .. }
        | Request::QueueFlush { .. }
        | Request::QueueDelete { .. }
        | Request::QueueBounce { .. } => {
            return Box::pin(execute_queue(store, None, request)).await;
        }
    };
    match result {
        Ok(out) => Response::ok(out),
        Err(e) => Response::err(e.to_string()),
    }
}

/// Queue commands; `outbound` is the running server's registry (None when
/// the CLI has the store to itself).
pub async fn execute_queue(
    store: &dyn Store,
    outbound: Option<&crate::outbound::Outbound>,
    request: &Request,
) -> Response {
    use crate::outbound::admin;
    let result = match request {
        Request::QueueList { json } => admin::list(store, outbound, *json).await,
        Request::QueueShow { id, json } => admin::show(store, outbound, id, *json).await,
        Request::QueueFlush { id } => admin::flush(store, outbound, id.as_deref()).await,
        Request::QueueDelete { id } => admin::delete(store, outbound, id).await,
        Request::QueueBounce { id } => admin::bounce(store, outbound, id).await,
        _ => return Box::pin(execute_store(store, request)).await,
    };
    match result {
        Ok(out) => Response::ok(out),
        Err(e) => Response::err(e),
    }
}
