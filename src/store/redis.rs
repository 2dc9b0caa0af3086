//! `redis://`, `rediss://`, Sentinel and Cluster (see `redis_conn`): hosts share tokens through
//! Redis.
//!
//! Per app: a hash `<prefix>{<appid>}` (the record: access_token, generation, fetched_at_ms,
//! expires_at_ms, invalidated) and a string `<prefix>{<appid>}:lease` holding the lease owner's
//! id, set with NX and a PX expiry so that a holder killed mid-refresh is replaced within
//! `lease_ms`. The `{appid}` hash tag puts both keys in one Redis Cluster slot, so every script
//! touches one slot.
//!
//! Every read and conditional write is a Lua script, atomic on the server, and every time in
//! the record is the Redis server's own clock (`TIME` inside the script): no client's wall
//! clock is ever written or compared. A client publishes the lifetime WeChat gave it and the
//! age of the token; it reads back the lifetime and the time left.

use std::fmt;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use redis::{ConnectionLike, Script, Value};

use super::record::{Loaded, Raw, Record, validate};
use super::redis_conn::{RedisConn, RedisTls};
use super::{Lease, Paced, Store, check_prefix, store_error};
use crate::error::Error;

/// The server's clock in ms, from inside a script.
const NOW: &str = "local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/// Returns `{now}` when there is no record, `{now, 0}` when the key is not a hash, else
/// `{now, 1, {field, value, ...}}`.
static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
        {NOW}
        local ty = redis.call('TYPE', KEYS[1])['ok']
        if ty == 'none' then return {{now}} end
        if ty ~= 'hash' then return {{now, 0}} end
        return {{now, 1, redis.call('HGETALL', KEYS[1])}}"
    ))
});

/// Writes the record if the caller holds the lease and its generation is newer than a sane
/// stored one; anything else in the key (garbage, another type) is replaced. The record is
/// kept a day past the token's expiry, so generations keep counting across idle periods.
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
        -- Writes after TIME need effect replication: the default from Redis 5, a no-op since 7.
        redis.replicate_commands()
        if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
        if redis.call('TYPE', KEYS[1])['ok'] == 'hash' then
            local cur = tonumber(redis.call('HGET', KEYS[1], 'generation') or '')
            if cur and cur >= 1 and cur <= 9007199254740991 and cur == math.floor(cur)
               and tonumber(ARGV[3]) <= cur then return 0 end
        end
        {NOW}
        local fetched = now - tonumber(ARGV[5])
        local expires = fetched + tonumber(ARGV[4])
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[1], 'access_token', ARGV[2], 'generation', ARGV[3],
                   'fetched_at_ms', string.format('%d', fetched),
                   'expires_at_ms', string.format('%d', expires), 'invalidated', '0',
                   'renewed', ARGV[6])
        redis.call('PEXPIRE', KEYS[1], expires - now + 86400000)
        return 1"
    ))
});

static INVALIDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('TYPE', KEYS[1])['ok'] == 'hash'
           and redis.call('HGET', KEYS[1], 'generation') == ARGV[1] then
            redis.call('HSET', KEYS[1], 'invalidated', '1')
            return 1
        end
        return 0",
    )
});

/// The fleet's replacements of reported tokens (see `store::pace_times`, the same rule): the
/// server-clock times of the last day, space-separated in one hash field. Returns `{0}` when
/// claimed, `{1, ms to wait}` when too soon, `{2}` when the daily number is spent.
static PACE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
        redis.replicate_commands()
        {NOW}
        local spacing, daily = tonumber(ARGV[1]), tonumber(ARGV[2])
        local kept, last = {{}}, nil
        if redis.call('TYPE', KEYS[1])['ok'] == 'hash' then
            for t in string.gmatch(redis.call('HGET', KEYS[1], 'times') or '', '%d+') do
                local v = tonumber(t)
                if v <= now and now - v < 86400000 then
                    table.insert(kept, string.format('%d', v))
                    if not last or v > last then last = v end
                end
            end
        end
        if last and now - last < spacing then return {{1, spacing - (now - last)}} end
        if #kept >= daily then return {{2}} end
        table.insert(kept, string.format('%d', now))
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[1], 'times', table.concat(kept, ' '))
        redis.call('PEXPIRE', KEYS[1], 86400000)
        return {{0}}"
    ))
});

/// Whether the caller still holds the lease: run before a fetch, it also proves that this
/// Redis user may run scripts (an ACL without them fails here, before WeChat is asked).
static HOLDS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
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

    /// `{appid}` is a Redis Cluster hash tag: the record and the lease share a slot. A ticket
    /// (`id@kind`) keeps its id's tag: `<prefix>{id}:ticket:<kind>`, in the same slot.
    fn key(&self, appid: &str) -> String {
        match super::split_key(appid) {
            (id, Some(kind)) => format!("{}{{{id}}}:ticket:{kind}", self.prefix),
            (id, None) => format!("{}{{{id}}}", self.prefix),
        }
    }

    fn lease_key(&self, appid: &str) -> String {
        format!("{}:lease", self.key(appid))
    }

    fn with_conn<T>(
        &self,
        what: &str,
        op: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        self.conn.with_conn(what, op)
    }
}

/// Reads the LOAD script's answer.
fn parse_load(v: Value) -> Result<Loaded, String> {
    let Value::Array(parts) = v else {
        return Err("unexpected answer to the load script".into());
    };
    let mut parts = parts.into_iter();
    let now = match parts.next() {
        Some(Value::Int(n)) if n > 0 => n as u64,
        _ => return Err("unexpected answer to the load script".into()),
    };
    let fields = match (parts.next(), parts.next()) {
        (None, _) => return Ok(Loaded::Absent),
        (Some(Value::Int(1)), Some(Value::Array(fields))) => fields,
        _ => {
            return Ok(Loaded::Bad {
                generation: 0,
                why: "the key is not a hash".into(),
            });
        }
    };
    let mut raw = Raw::default();
    let mut it = fields.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        let (Value::BulkString(k), Value::BulkString(v)) = (k, v) else {
            continue;
        };
        let text = String::from_utf8(v).ok();
        let num = || text.as_deref().and_then(|t| t.parse::<u64>().ok());
        match k.as_slice() {
            b"access_token" => raw.access_token = text.clone(),
            b"generation" => raw.generation = num(),
            b"fetched_at_ms" => raw.fetched_at_ms = num(),
            b"expires_at_ms" => raw.expires_at_ms = num(),
            b"invalidated" => raw.invalidated = text.as_deref() == Some("1"),
            b"renewed" => raw.renewed = text.as_deref() == Some("1"),
            _ => {}
        }
    }
    Ok(validate(raw, now))
}

impl Store for RedisStore {
    fn load(&self, appid: &str) -> Result<Loaded, Error> {
        let key = self.key(appid);
        let sent = Instant::now();
        let v: Value = self.with_conn("load", |c| LOAD.key(&key).invoke(c))?;
        let mut loaded = parse_load(v)
            .map_err(|e| store_error(format!("redis at {}: {e}", self.conn.shown())))?;
        // The server measured the time left before its answer travelled back: count the
        // whole round trip against it, so a slow link only ever shortens a token's life here.
        if let Loaded::Valid(r) = &mut loaded {
            let rtt = sent.elapsed().as_millis() as u64;
            r.remaining_ms = r.remaining_ms.saturating_sub(rtt);
        }
        Ok(loaded)
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
        Ok(set.map(|_| Lease {
            owner,
            file: None,
            temp: None,
            rtt_ms: 0,
        }))
    }

    fn prepare(&self, appid: &str, lease: &mut Lease) -> Result<(), Error> {
        let sent = Instant::now();
        let held: i64 = self.with_conn("lease check", |c| {
            HOLDS.key(self.lease_key(appid)).arg(&lease.owner).invoke(c)
        })?;
        lease.rtt_ms = sent.elapsed().as_millis() as u64;
        if held != 1 {
            return Err(store_error(format!(
                "redis at {}: the refresh lease expired before the fetch",
                self.conn.shown()
            )));
        }
        Ok(())
    }

    fn publish(&self, appid: &str, r: &Record, lease: &mut Lease) -> Result<bool, Error> {
        let done: i64 = self.with_conn("publish", |c| {
            PUBLISH
                .key(self.key(appid))
                .key(self.lease_key(appid))
                .arg(&lease.owner)
                .arg(&r.access_token)
                .arg(r.generation)
                .arg(r.lifetime_ms)
                // The request's transit to the server makes the token older than it was when
                // sent: the last measured round trip stands in for it.
                .arg(r.age_ms() + lease.rtt_ms)
                .arg(if r.renewed { "1" } else { "0" })
                .invoke(c)
        })?;
        Ok(done == 1)
    }

    fn invalidate(&self, appid: &str, generation: u64, _lease: &mut Lease) -> Result<bool, Error> {
        let done: i64 = self.with_conn("invalidate", |c| {
            INVALIDATE.key(self.key(appid)).arg(generation).invoke(c)
        })?;
        Ok(done == 1)
    }

    fn pace_replacement(
        &self,
        appid: &str,
        spacing: Duration,
        daily: u32,
        _lease: &mut Lease,
    ) -> Result<Paced, Error> {
        let key = format!("{}{{{appid}}}:passive", self.prefix);
        let v: Vec<i64> = self.with_conn("passive refresh pace", |c| {
            PACE.key(&key)
                .arg(spacing.as_millis() as u64)
                .arg(daily)
                .invoke(c)
        })?;
        Ok(match v.as_slice() {
            [0, ..] => Paced::Claimed,
            [1, wait] => Paced::TooSoon(Duration::from_millis((*wait).max(0) as u64)),
            _ => Paced::DailySpent,
        })
    }

    fn release(&self, appid: &str, lease: Lease) -> Result<(), Error> {
        // If this fails, the lease expires by itself within lease_ms; the caller counts it.
        self.with_conn("release lease", |c| {
            RELEASE
                .key(self.lease_key(appid))
                .arg(&lease.owner)
                .invoke::<i64>(c)
        })
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// Whatever a hash holds, parsing the load script's answer never panics, and accepts
        /// only records `validate` accepts.
        #[test]
        fn arbitrary_hashes_are_parsed_or_refused(
            now in 1i64..i64::MAX,
            fields in proptest::collection::vec(
                (proptest::sample::select(vec!["access_token", "generation", "fetched_at_ms",
                    "expires_at_ms", "invalidated", "x"]),
                 proptest::collection::vec(proptest::num::u8::ANY, 0..40)), 0..8),
        ) {
            let flat = fields.iter().flat_map(|(k, v)| [bulk(k.as_bytes()), bulk(v)]).collect();
            let v = Value::Array(vec![Value::Int(now), Value::Int(1), Value::Array(flat)]);
            if let Ok(Loaded::Valid(r)) = parse_load(v) {
                proptest::prop_assert!(r.remaining_ms <= r.lifetime_ms);
            }
        }
    }

    #[test]
    fn odd_answers_are_errors_or_bad_records() {
        assert!(parse_load(Value::Nil).is_err());
        assert_eq!(
            parse_load(Value::Array(vec![Value::Int(5)])),
            Ok(Loaded::Absent)
        );
        assert!(matches!(
            parse_load(Value::Array(vec![Value::Int(5), Value::Int(0)])),
            Ok(Loaded::Bad { .. })
        ));
    }
}
