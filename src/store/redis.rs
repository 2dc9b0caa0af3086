//! `redis://` and `rediss://`: hosts share tokens through Redis.
//!
//! Per app: a hash `<prefix><appid>` (the record: access_token, generation, fetched_at_ms,
//! expires_at_ms, invalidated) and a string `<prefix><appid>:lease` holding the lease owner's id,
//! set with NX and a PX expiry so that a holder killed mid-refresh is replaced within `lease_ms`.
//! Every conditional write is a Lua script, so it is atomic on the server.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use redis::{Commands, Script};
use std::sync::{Mutex, TryLockError};

use super::{Lease, Record, Store, check_prefix, store_error};
use crate::error::Error;
use crate::fork;

/// A record outlives its token by a day, so the generation keeps counting across idle periods.
const RECORD_KEEP_MS: u64 = 86_400_000;

static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
        local current = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
        if tonumber(ARGV[3]) <= current then return 0 end
        redis.call('HSET', KEYS[1], 'access_token', ARGV[2], 'generation', ARGV[3],
                   'fetched_at_ms', ARGV[4], 'expires_at_ms', ARGV[5], 'invalidated', '0')
        redis.call('PEXPIRE', KEYS[1], ARGV[6])
        return 1",
    )
});

static INVALIDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('HGET', KEYS[1], 'generation') == ARGV[1] then
            redis.call('HSET', KEYS[1], 'invalidated', '1')
            return 1
        end
        return 0",
    )
});

static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0",
    )
});

pub struct RedisStore {
    client: redis::Client,
    /// host:port/db, without credentials: what messages and Debug show.
    shown: String,
    prefix: String,
    timeout: Duration,
    /// One idle connection, tagged with the fork epoch it was opened in. Taken out for each
    /// operation (the lock is never held across I/O) and put back after a success.
    idle: Mutex<Option<(u64, redis::Connection)>>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.shown, self.prefix)
    }
}

impl RedisStore {
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<RedisStore, Error> {
        check_prefix(prefix)?;
        let rest = url.split_once("://").map_or("", |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or("");
        if authority.rsplit('@').next().unwrap_or("").is_empty() {
            return Err(Error::invalid(
                "options_json: store needs a host, as in redis://127.0.0.1:6379/0",
            ));
        }
        // The URL may hold a password: never echo it, nor redis's own parse error.
        let client = redis::Client::open(url)
            .map_err(|_| Error::invalid("options_json: store is not a valid redis:// URL"))?;
        let info = client.get_connection_info();
        let shown = format!("{} (db {})", info.addr(), info.redis_settings().db());
        Ok(RedisStore {
            client,
            shown,
            prefix: prefix.to_owned(),
            timeout: timeout.max(Duration::from_millis(100)),
            idle: Mutex::new(None),
        })
    }

    fn key(&self, appid: &str) -> String {
        format!("{}{appid}", self.prefix)
    }

    fn lease_key(&self, appid: &str) -> String {
        format!("{}{appid}:lease", self.prefix)
    }

    /// Runs `op` on a connection; a failed connection is dropped rather than reused.
    fn with_conn<T>(
        &self,
        what: &str,
        op: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        let epoch = fork::epoch();
        // try_lock: after a fork, the slot may be locked forever by a thread that is gone;
        // then this process simply works without a cached connection.
        let mut slot = match self.idle.try_lock() {
            Ok(slot) => Some(slot),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let cached = slot.as_mut().and_then(|s| s.take());
        drop(slot);
        let mut conn = match cached {
            Some((e, c)) if e == epoch => c,
            other => {
                // A connection from before a fork shares its socket with the parent: leave it
                // to the parent rather than closing or using it.
                std::mem::forget(other);
                let c = self
                    .client
                    .get_connection_with_timeout(self.timeout)
                    .map_err(|e| {
                        store_error(format!(
                            "cannot connect to redis at {}: {}",
                            self.shown,
                            describe(&e)
                        ))
                    })?;
                c.set_read_timeout(Some(self.timeout))
                    .map_err(|e| store_error(describe(&e)))?;
                c.set_write_timeout(Some(self.timeout))
                    .map_err(|e| store_error(describe(&e)))?;
                c
            }
        };
        match op(&mut conn) {
            Ok(v) => {
                if let Ok(mut slot) = self.idle.try_lock() {
                    *slot = Some((epoch, conn));
                }
                Ok(v)
            }
            Err(e) => Err(store_error(format!(
                "redis at {}: {what} failed: {}",
                self.shown,
                describe(&e)
            ))),
        }
    }
}

/// redis's errors can quote a command's arguments; keep only the kind and the server's code.
fn describe(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_owned()
    } else {
        format!("{:?} {}", e.kind(), e.code().unwrap_or(""))
    }
}

impl Store for RedisStore {
    fn load(&self, appid: &str) -> Result<Option<Record>, Error> {
        let key = self.key(appid);
        let fields: std::collections::HashMap<String, String> =
            self.with_conn("HGETALL", |c| c.hgetall(&key))?;
        if fields.is_empty() {
            return Ok(None);
        }
        let num = |k: &str| {
            fields
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| store_error(format!("{key}: field {k} missing or not a number")))
        };
        Ok(Some(Record {
            access_token: fields
                .get("access_token")
                .cloned()
                .ok_or_else(|| store_error(format!("{key}: no access_token")))?,
            generation: num("generation")?,
            fetched_at_ms: num("fetched_at_ms")?,
            expires_at_ms: num("expires_at_ms")?,
            invalidated: fields.get("invalidated").is_some_and(|v| v == "1"),
        }))
    }

    fn try_lease(&self, appid: &str, ttl: Duration) -> Result<Option<Lease>, Error> {
        let owner = super::owner_id();
        let key = self.lease_key(appid);
        let opts = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(ttl.as_millis() as u64));
        let set: Option<String> =
            self.with_conn("SET NX (lease)", |c| c.set_options(&key, &owner, opts))?;
        Ok(set.map(|_| Lease { owner, file: None }))
    }

    fn publish(&self, appid: &str, r: &Record, lease: &Lease) -> Result<bool, Error> {
        let keep = r.expires_at_ms.saturating_sub(super::now_ms()) + RECORD_KEEP_MS;
        let done: i64 = self.with_conn("publish", |c| {
            PUBLISH
                .key(self.key(appid))
                .key(self.lease_key(appid))
                .arg(&lease.owner)
                .arg(&r.access_token)
                .arg(r.generation)
                .arg(r.fetched_at_ms)
                .arg(r.expires_at_ms)
                .arg(keep)
                .invoke(c)
        })?;
        Ok(done == 1)
    }

    fn invalidate(&self, appid: &str, generation: u64, _lease: &Lease) -> Result<bool, Error> {
        let done: i64 = self.with_conn("invalidate", |c| {
            INVALIDATE.key(self.key(appid)).arg(generation).invoke(c)
        })?;
        Ok(done == 1)
    }

    fn release(&self, appid: &str, lease: Lease) {
        // Best effort: if this fails, the lease expires by itself.
        let _ = self.with_conn("release lease", |c| {
            RELEASE
                .key(self.lease_key(appid))
                .arg(&lease.owner)
                .invoke::<i64>(c)
        });
    }
}
