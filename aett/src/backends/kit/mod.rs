//! What backend authors share. **Not needed to use aett**: this module is for people writing
//! a storage backend, in this crate or their own.
//!
//! - [`paged`] turns page-at-a-time reads into the `'static` streams the store traits return,
//!   sizing pages by stored bytes and yielding every intact row before a damaged one;
//!   [`PageBuilder`] fills a page row by row as a driver streams the rows in.
//! - [`paged_by_key`] does the same for reads paged by a string key (stream ids).
//! - [`resolve_taken_sequence`] and [`check_follows_head`] are the commit rules every backend
//!   enforces the same way: what an attempt whose sequence is taken gets back (duplicate,
//!   conflicting, non-conflicting), and when an attempt is invalid.
//! - [`stamp_to_micros`] / [`stamp_from_micros`]: the microsecond stamps every backend keeps.
//! - [`CommitSignal`]: in-process wake-ups for followers of the log.
//! - [`lease_check`]: the lease rule every checkpoint store enforces the same way.
//!
//! A backend proves itself by running the shared contract suite (the `aett-conformance` crate in
//! aett's repository), which every backend in this crate runs whole.

#[cfg(any(feature = "dynamodb", feature = "s3"))]
pub(crate) mod aws;
mod concurrency;
mod paging;
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "mongodb",
    feature = "dynamodb",
    feature = "s3"
))]
pub(crate) mod sql;
mod wake;

use chrono::{DateTime, Utc};

pub use concurrency::{check_follows_head, resolve_taken_sequence};
pub use paging::{
    paged, paged_by_key, Page, PageBuilder, PageItem, Resume, FIRST_PAGE, PAGE_BYTES, PAGE_SIZE,
};
pub use wake::CommitSignal;

use uuid::Uuid;

use crate::error::StoreError;

/// The lease rule: `owner` may take or renew a lease held by `holder` until `until` when it
/// is its own, nobody's, or expired at `now`; otherwise [`StoreError::LeaseHeld`].
pub fn lease_check(
    projection: &str,
    owner: Uuid,
    holder: Option<(Uuid, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match holder {
        Some((holder, until)) if holder != owner && until > now => Err(StoreError::LeaseHeld {
            projection: projection.to_owned(),
            until,
        }),
        _ => Ok(()),
    }
}

/// Microseconds since the Unix epoch, the form in which backends store commit stamps.
pub fn stamp_to_micros(stamp: DateTime<Utc>) -> i64 {
    stamp.timestamp_micros()
}

/// The inverse of [`stamp_to_micros`]; `None` for a value outside chrono's range.
pub fn stamp_from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_through_micros() {
        let stamp = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        assert_eq!(stamp_from_micros(stamp_to_micros(stamp)), Some(stamp));
        assert_eq!(stamp_from_micros(i64::MAX), None);
    }
}
