//! Operator commands (`ferrymail user …`, `queue …`, `plugin reload`).
//!
//! sled allows one process per store, so while the server runs the CLI
//! sends its command over a Unix socket in `data_dir` and the server
//! executes it; when no server runs, the CLI opens the store itself and
//! executes the same code. Either way one process touches the store.

pub mod client;
pub mod server;

use ferrymail_store::{Store, StoreError};
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
/// answered by the caller.
pub fn execute_store(store: &Store, request: &Request) -> Response {
    let result: Result<Vec<String>, StoreError> = match request {
        Request::UserAdd { address, password_hash } => {
            store.add_account(address, password_hash).map(|a| vec![format!("added {}", a.address)])
        }
        Request::UserDel { address } => store.delete_account(address).map(|()| vec![format!("deleted {address}")]),
        Request::UserList => store.accounts().map(|accounts| {
            accounts
                .iter()
                .map(|a| {
                    let n = store.mailbox_summary(a.id, "INBOX").ok().flatten().map(|s| s.messages).unwrap_or(0);
                    format!("{}\t{} messages", a.address, n)
                })
                .collect()
        }),
        Request::UserPasswd { address, password_hash } => {
            store.set_password(address, password_hash).map(|()| vec![format!("password changed for {address}")])
        }
        Request::Reload => return Response::err("reload needs a running server"),
        Request::QueueList { .. }
        | Request::QueueShow { .. }
        | Request::QueueFlush { .. }
        | Request::QueueDelete { .. }
        | Request::QueueBounce { .. } => {
            return execute_queue(store, None, request);
        }
    };
    let result = result.and_then(|out| store.flush_now().map(|()| out));
    match result {
        Ok(out) => Response::ok(out),
        Err(e) => Response::err(e.to_string()),
    }
}

/// Queue commands; `outbound` is the running server's registry (None when
/// the CLI has the store to itself).
pub fn execute_queue(store: &Store, outbound: Option<&crate::outbound::Outbound>, request: &Request) -> Response {
    use crate::outbound::admin;
    let result = match request {
        Request::QueueList { json } => admin::list(store, outbound, *json),
        Request::QueueShow { id, json } => admin::show(store, outbound, id, *json),
        Request::QueueFlush { id } => admin::flush(store, outbound, id.as_deref()),
        Request::QueueDelete { id } => admin::delete(store, outbound, id),
        Request::QueueBounce { id } => admin::bounce(store, outbound, id),
        _ => return execute_store(store, request),
    };
    let result = result.and_then(|out| store.flush_now().map(|()| out).map_err(|e| e.to_string()));
    match result {
        Ok(out) => Response::ok(out),
        Err(e) => Response::err(e),
    }
}
