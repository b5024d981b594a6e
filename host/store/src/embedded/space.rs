//! The free-space reserve: new content is refused (452 4.3.1 for SMTP)
//! while the filesystem holding the store has less than the reserve free, so
//! the store's own bookkeeping, deletions and recovery always find room,
//! and sled never meets a full disk in normal operation (Postfix's
//! `queue_minfree` is the same idea).

use crate::{Result, StoreError};
use std::path::Path;

/// Never less than this, however small the filesystem: room for sled to
/// open (a snapshot, a log segment) and flush a group.
const FLOOR: u64 = 1 << 20;

/// Free and total bytes of the filesystem holding the store, as an
/// unprivileged writer sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Space {
    pub free: u64,
    pub total: u64,
}

pub(crate) fn available(dir: &Path) -> std::io::Result<Space> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(Space { free: s.f_bavail.saturating_mul(s.f_frsize), total: s.f_blocks.saturating_mul(s.f_frsize) })
}

/// The automatic reserve, when none is configured.
const AUTOMATIC: u64 = 256 << 20;

/// The reserve on a filesystem of `total` bytes: as configured, or else
/// 256 MiB but at most a twentieth of the filesystem (a small tmpfs stays
/// usable); never below 1 MiB.
pub(crate) fn reserve(total: u64, configured: Option<u64>) -> u64 {
    configured.unwrap_or(AUTOMATIC.min(total / 20)).max(FLOOR)
}

fn out_of_space(detail: String) -> StoreError {
    StoreError::io(std::io::Error::new(std::io::ErrorKind::StorageFull, detail))
}

/// Refuses `growth` more bytes when they would eat into the reserve.
pub(crate) fn check(space: &std::io::Result<Space>, growth: u64, configured: Option<u64>) -> Result<()> {
    match space {
        Ok(s) => {
            let reserve = reserve(s.total, configured);
            if s.free < reserve.saturating_add(growth) {
                return Err(out_of_space(format!(
                    "{} bytes free, {reserve} kept in reserve: refusing new content",
                    s.free
                )));
            }
            Ok(())
        }
        // statvfs failing says nothing about space; the write itself will tell.
        Err(_) => Ok(()),
    }
}

/// Whether a failed store may try to reopen: the reserve is free again.
pub(crate) fn probe(dir: &Path, configured: Option<u64>) -> Result<()> {
    let s = available(dir)?;
    let want = reserve(s.total, configured).saturating_add(FLOOR);
    if s.free < want {
        return Err(out_of_space(format!("{} bytes free, {want} wanted before reopening", s.free)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_scales_down_on_small_filesystems_but_keeps_a_floor() {
        assert_eq!(reserve(48 << 20, None), (48 << 20) / 20);
        assert_eq!(reserve(1 << 40, None), 256 << 20);
        assert_eq!(reserve(4 << 20, None), FLOOR);
        assert_eq!(reserve(4 << 20, Some(1 << 30)), 1 << 30, "as configured");
    }

    #[test]
    fn growth_into_the_reserve_is_refused_as_out_of_space() {
        let space = Ok(Space { free: 100 << 20, total: 10 << 30 });
        assert!(check(&space, 1 << 20, Some(64 << 20)).is_ok());
        let e = check(&space, 40 << 20, Some(64 << 20)).unwrap_err();
        assert!(e.is_out_of_space(), "{e}");
    }
}
