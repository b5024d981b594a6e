//! Memory of a server during a run, over the process and its descendants
//! (Haraka and Postfix fork), sampled every 50 ms:
//! - RSS: the sum of VmRSS, maxed with the kernel's own peak (VmHWM) of the
//!   main process, reset at the start by writing 5 to /proc/PID/clear_refs;
//! - PSS: the sum of Pss (smaps_rollup), which counts a page shared by N
//!   processes as 1/N each, so multi-process servers are not overcharged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn proc_kb(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

fn descendants(pid: u32, out: &mut Vec<u32>) {
    out.push(pid);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            descendants(child, out);
        }
    }
}

fn tree_sum(pid: u32, file: &str, key: &str) -> u64 {
    let mut pids = Vec::new();
    descendants(pid, &mut pids);
    pids.into_iter().filter_map(|p| proc_kb(p, file, key)).sum()
}

/// VmRSS of `pid` and all its descendants, in KiB.
pub fn tree_rss_kb(pid: u32) -> u64 {
    tree_sum(pid, "status", "VmRSS:")
}

/// Pss of `pid` and all its descendants, in KiB.
pub fn tree_pss_kb(pid: u32) -> u64 {
    tree_sum(pid, "smaps_rollup", "Pss:")
}

/// Peak memory seen during a run, KiB.
#[derive(Debug, Clone, Copy)]
pub struct Peak {
    pub rss_kb: u64,
    pub pss_kb: u64,
}

pub struct Watch {
    pid: u32,
    rss: Arc<AtomicU64>,
    pss: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    pub fn start(pid: u32) -> Watch {
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let rss = Arc::new(AtomicU64::new(tree_rss_kb(pid)));
        let pss = Arc::new(AtomicU64::new(tree_pss_kb(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, p, s) = (rss.clone(), pss.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                r.fetch_max(tree_rss_kb(pid), Ordering::Relaxed);
                p.fetch_max(tree_pss_kb(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Watch { pid, rss, pss, stop, task }
    }

    pub async fn finish(self) -> Peak {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let rss = self.rss.load(Ordering::Relaxed).max(tree_rss_kb(self.pid));
        Peak {
            rss_kb: rss.max(proc_kb(self.pid, "status", "VmHWM:").unwrap_or(0)),
            pss_kb: self.pss.load(Ordering::Relaxed).max(tree_pss_kb(self.pid)),
        }
    }
}
