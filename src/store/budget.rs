//! The direct-fetch budget while a store is unreachable, shared by every process of this user
//! on this host (never per process, so the bound does not grow with the number of processes).
//!
//! One small file per app, `<dir>/<prefix><appid>.fallback`, holds the boot-clock times of the
//! fallback fetches of the last hour, one per line, behind the boot id; it is read and
//! rewritten under an exclusive flock. Any trouble with it refuses the fallback: without a
//! way to count, nobody fetches blind.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::fs_unix as sys;
use super::{Store, store_error};
use crate::error::Error;

const HOUR_MS: u64 = 3_600_000;

fn default_dir() -> PathBuf {
    std::env::temp_dir().join(format!("wx-token-{}", sys::euid()))
}

/// Spends one of `per_hour` fallback fetches for `appid` on this host, if any is left.
pub fn spend_fallback(
    store: &dyn Store,
    prefix_and_appid: &str,
    per_hour: u32,
) -> Result<bool, Error> {
    if per_hour == 0 {
        return Ok(false);
    }
    let dir = store
        .budget_dir()
        .map_or_else(default_dir, Path::to_path_buf);
    sys::ensure_private_dir(&dir).map_err(|e| store_error(format!("fallback budget: {e}")))?;
    let path = dir.join(format!("{}.fallback", prefix_and_appid.replace(':', "_")));
    let fail = |e: std::io::Error| store_error(format!("fallback budget {}: {e}", path.display()));
    let mut f = sys::open_lock(&path).map_err(fail)?;
    sys::lock(&f, true).map_err(fail)?;
    let text = sys::read_small(&path).map_err(fail)?.unwrap_or_default();
    let now = sys::host_clock_ms();
    let boot = sys::boot_id();
    let mut recent: Vec<u64> = String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(b, _)| *b == boot)
        .filter_map(|(_, t)| t.trim().parse().ok())
        .filter(|&t: &u64| t <= now && now - t < HOUR_MS)
        .collect();
    if recent.len() >= per_hour as usize {
        return Ok(false);
    }
    recent.push(now);
    let body: String = recent.iter().map(|t| format!("{boot} {t}\n")).collect();
    f.set_len(0).map_err(fail)?;
    f.seek(SeekFrom::Start(0)).map_err(fail)?;
    f.write_all(body.as_bytes()).map_err(fail)?;
    f.sync_data().map_err(fail)?;
    Ok(true)
}
