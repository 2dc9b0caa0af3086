//! `redis://`, `rediss://`, Sentinel and Cluster (see `redis_conn`): hosts share tokens through
//! Redis.
//!
//! Per app: a hash `<prefix>{<appid>}` (the record: access_token, generation, fetched_at_ms,
//! expires_at_ms, invalidated) and a string `<prefix>{<appid>}:lease` holding the lease owner's id,
//! set with NX and a PX expiry so that a holder killed mid-refresh is replaced within `lease_ms`.
//! Every conditional write is a Lua script, so it is atomic on the server.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::redis_conn::{RedisConn, RedisTls};
use super::{Lease, Record, Store, check_prefix, store_error};
use crate::error::Error;

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
    conn: RedisConn,
    prefix: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.conn.shown(), self.prefix)
    }
}

impl RedisStore {
    pub fn new(
        url: &str,
        prefix: &str,
        tls: &RedisTls,
        timeout: Duration,
    ) -> Result<RedisStore, Error> {
        check_prefix(prefix)?;
        Ok(RedisStore {
            conn: RedisConn::open(url, tls, timeout)?,
            prefix: prefix.to_owned(),
        })
    }

    /// The appid is a hash tag (`{…}`), so that an app's record and lease live in one Redis
    /// Cluster slot and every script touches one slot.
    fn key(&self, appid: &str) -> String {
        format!("{}{{{appid}}}", self.prefix)
    }

    fn lease_key(&self, appid: &str) -> String {
        format!("{}{{{appid}}}:lease", self.prefix)
    }

    fn with_conn<T>(
        &self,
        what: &str,
        op: impl FnOnce(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        self.conn.with_conn(what, op)
    }
}

impl Store for RedisStore {
    fn load(&self, appid: &str) -> Result<Option<Record>, Error> {
        let key = self.key(appid);
        let fields: std::collections::HashMap<String, String> =
            self.with_conn("HGETALL", |c| redis::cmd("HGETALL").arg(&key).query(c))?;
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
        let set: Option<String> = self.with_conn("SET NX (lease)", |c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(&owner)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .query(c)
        })?;
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
