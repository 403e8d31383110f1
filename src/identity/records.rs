//! Small helpers shared by the identity records: the clock, expiries as store ttls, and
//! the index that lists the records of one kind (the store has no key scan).
use std::time::Duration;

use crate::store::{SharedStore, StoreError};

/// Most records one listing reads (the store caps an index read at this too).
pub const MAX_LISTED: usize = crate::store::MAX_LIST;

/// Seconds since the epoch, the unit of every stored time.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The ttl of a record that expires at `expires` (unix seconds); `None` once it passed.
pub fn ttl_until(expires: i64, now: i64) -> Option<Duration> {
    u64::try_from(expires.saturating_sub(now)).ok().filter(|s| *s > 0).map(Duration::from_secs)
}

pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// A number written as text (the last-use records).
pub async fn get_number(store: &SharedStore, key: &str) -> Result<Option<i64>, StoreError> {
    let bytes = store.get(key).await?;
    Ok(bytes.and_then(|b| std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok())))
}
