//! Telling systemd (Type=notify) where the server is: ready once every
//! listener is bound and the store is open, reloading while SIGHUP is
//! handled, stopping at shutdown. Without `NOTIFY_SOCKET` (not started by
//! systemd) every call does nothing.

use sd_notify::NotifyState;

pub fn ready() {
    notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

pub fn reloading() {
    notify(&[NotifyState::Reloading]);
}

pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

fn notify(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}
