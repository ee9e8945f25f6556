//! The table's layout: keys, items, and a commit split across items.
//!
//! One table, partition key `pk` and sort key `sk` (both strings), no secondary index, so every
//! read is a strongly consistent `Query` or `GetItem` on one partition:
//!
//! | partition (`pk`) | sort key (`sk`) | item |
//! |---|---|---|
//! | `S{len(tenant)}:{tenant}{stream}` | `c{revision:020}` | a commit, keyed by its last stream revision |
//! | | `c{revision:020}.{part:03}` | the rest of a commit larger than one item |
//! | | `s{revision:020}` (and `.{part:03}`) | a snapshot |
//! | | `i{commit id}` | the commit id, taken once per stream (duplicate detection) |
//! | `T{tenant}` | `h{stream}` | the stream's head: sequence, revision, snapshot revision |
//! | | `l{checkpoint:020}` | the tenant's log: a pointer to a commit, or a deletion notice |
//! | `L` | `n` | the log's counter: the highest checkpoint handed out |
//! | | `l{checkpoint:020}` | the log: a pointer to a commit, or a deletion notice |
//! | `P{projection}` | `p` | a projection's checkpoint and lease |
//! | `M` | `aett` | the marker: this table is an aett store, of this schema version |
//!
//! The tenant's length before it makes tenant "a" with stream "bc" and tenant "ab" with stream
//! "c" different partitions. A key longer than DynamoDB allows (2048 bytes for `pk`, 1024 for
//! `sk`) is replaced by the SHA-256 of the same text under another first letter (`H`, `U`, `g`,
//! `Q`), and the ids themselves are stored in every item and checked when read.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

use crate::backends::kit::sql::{encode_payload, RawCommit, StoredId, StoredStamp};
use crate::backends::kit::stamp_to_micros;
use crate::error::{Scope, StoreError};
use crate::model::CommitAttempt;

/// An item as the SDK hands it over.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// The schema version the marker records.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// The log's partition.
pub(crate) const LOG_PK: &str = "L";
/// The counter's sort key in the log's partition.
pub(crate) const COUNTER_SK: &str = "n";
/// The marker's key.
pub(crate) const MARKER_PK: &str = "M";
/// The marker's sort key.
pub(crate) const MARKER_SK: &str = "aett";
/// A projection's sort key.
pub(crate) const PROJECTION_SK: &str = "p";

/// The most bytes of a commit's events (or a snapshot's memento) one item holds: DynamoDB's
/// item limit is 400 KB, attribute names and keys included.
pub(crate) const PIECE_BYTES: usize = 350_000;

/// The most bytes of headers and events one commit may hold: a commit is written in one
/// `TransactWriteItems`, whose items may total 4 MB.
pub(crate) const MAX_COMMIT_BYTES: usize = 3_500_000;

const MAX_PK: usize = 2048;
const MAX_SK: usize = 1024;

/// `text` as a key: itself under `plain`, or its SHA-256 under `hashed` when longer than `max`.
fn key(plain: char, hashed: char, text: &str, max: usize) -> String {
    if text.len() + plain.len_utf8() <= max {
        let mut key = String::with_capacity(text.len() + 1);
        key.push(plain);
        key.push_str(text);
        return key;
    }
    let digest = Sha256::digest(text.as_bytes());
    let mut key = String::with_capacity(65);
    key.push(hashed);
    for byte in digest.iter() {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

/// The partition of a stream's commits, snapshots and commit ids.
pub(crate) fn stream_pk(tenant: &str, stream: &str) -> String {
    key(
        'S',
        'H',
        &format!("{}:{tenant}{stream}", tenant.len()),
        MAX_PK,
    )
}

/// The partition of a tenant's stream heads and log.
pub(crate) fn tenant_pk(tenant: &str) -> String {
    key('T', 'U', tenant, MAX_PK)
}

/// A projection's partition.
pub(crate) fn projection_pk(projection: &str) -> String {
    key('P', 'Q', projection, MAX_PK)
}

/// A stream's head, in its tenant's partition.
pub(crate) fn head_sk(stream: &str) -> String {
    key('h', 'g', stream, MAX_SK)
}

/// The sort keys of heads sort before this one, and those of log pointers after.
pub(crate) const HEADS_END: &str = "i";

/// A commit's sort key: its last revision, so a read from a revision starts at the commit
/// holding it.
pub(crate) fn commit_sk(revision: u64) -> String {
    format!("c{revision:020}")
}

/// A snapshot's sort key.
pub(crate) fn snapshot_sk(revision: u64) -> String {
    format!("s{revision:020}")
}

/// The sort key of part `part` (from 1) of the item at `sk`.
pub(crate) fn part_sk(sk: &str, part: usize) -> String {
    format!("{sk}.{part:03}")
}

/// The upper end of a range that takes in `sk` and its parts.
pub(crate) fn with_parts(sk: &str) -> String {
    format!("{sk}.~")
}

/// A commit id's sort key.
pub(crate) fn id_sk(commit_id: uuid::Uuid) -> String {
    format!("i{}", commit_id.simple())
}

/// A log pointer's sort key.
pub(crate) fn pointer_sk(checkpoint: u64) -> String {
    format!("l{checkpoint:020}")
}

/// The revision or checkpoint a `c`, `s` or `l` sort key holds, and whether it is a part.
pub(crate) fn sk_number(sk: &str) -> Option<(u64, bool)> {
    let digits = sk.get(1..21)?;
    let number = digits.parse().ok()?;
    Some((number, sk.len() > 21))
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn b(value: Vec<u8>) -> AttributeValue {
    AttributeValue::B(Blob::new(value))
}

/// A key.
pub(crate) fn item_key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A stored item's attributes, read with damage reported as [`StoreError::Corrupt`].
pub(crate) struct Fields<'a> {
    item: &'a Item,
    scope: &'a Scope,
}

impl<'a> Fields<'a> {
    pub fn new(item: &'a Item, scope: &'a Scope) -> Self {
        Self { item, scope }
    }

    pub fn corrupt(&self, reason: String) -> StoreError {
        let number = |name: &str| match self.item.get(name) {
            Some(AttributeValue::N(value)) => value.parse::<u64>().ok(),
            _ => None,
        };
        StoreError::Corrupt {
            scope: self.scope.clone(),
            commit_sequence: number("commit_sequence"),
            checkpoint: number("checkpoint"),
            reason,
        }
    }

    fn missing(&self, name: &str, kind: &str) -> StoreError {
        let sk = match self.item.get("sk") {
            Some(AttributeValue::S(sk)) => sk.as_str(),
            _ => "?",
        };
        self.corrupt(format!(
            "item `{sk}` has no {kind} attribute `{name}` (or one of another type)"
        ))
    }

    pub fn str(&self, name: &str) -> Result<&'a str, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::S(value)) => Ok(value),
            _ => Err(self.missing(name, "string")),
        }
    }

    pub fn optional_str(&self, name: &str) -> Result<Option<&'a str>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value)),
            _ => Err(self.missing(name, "string")),
        }
    }

    pub fn i64(&self, name: &str) -> Result<i64, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::N(value)) => value.parse().map_err(|_| {
                self.corrupt(format!("attribute `{name}` is not an integer: {value}"))
            }),
            _ => Err(self.missing(name, "number")),
        }
    }

    pub fn optional_i64(&self, name: &str) -> Result<Option<i64>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            _ => self.i64(name).map(Some),
        }
    }

    pub fn bytes(&self, name: &str) -> Result<&'a [u8], StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::B(value)) => Ok(value.as_ref()),
            _ => Err(self.missing(name, "binary")),
        }
    }

    /// How many items the value is split across (1 when it is not).
    pub fn parts(&self) -> Result<usize, StoreError> {
        let parts = self.optional_i64("parts")?.unwrap_or(1);
        usize::try_from(parts)
            .ok()
            .filter(|parts| (1..=100).contains(parts))
            .ok_or_else(|| self.corrupt(format!("{parts} parts")))
    }
}

/// `body` cut into the piece the main item holds beside `beside` bytes, and the pieces after it.
pub(crate) fn split(mut body: Vec<u8>, beside: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let first = PIECE_BYTES.saturating_sub(beside).min(body.len());
    let rest_bytes = body.split_off(first);
    let rest = rest_bytes.chunks(PIECE_BYTES).map(<[u8]>::to_vec).collect();
    (body, rest)
}

/// A commit as items: the main one (its checkpoint still to be set) and its parts.
pub(crate) struct CommitItems {
    pub main: Item,
    pub parts: Vec<Item>,
    pub sk: String,
}

impl CommitItems {
    pub fn new(attempt: &CommitAttempt) -> Result<Self, StoreError> {
        let (headers, events) = encode_payload(
            &attempt.tenant_id,
            &attempt.stream_id,
            &attempt.headers,
            &attempt.events,
        )?;
        let too_large = |reason: String| StoreError::InvalidCommit {
            tenant: attempt.tenant_id.clone(),
            stream: attempt.stream_id.clone(),
            commit_sequence: attempt.commit_sequence,
            reason,
        };
        let total = headers.len() + events.len();
        if total > MAX_COMMIT_BYTES {
            return Err(too_large(format!(
                "its headers and events take {total} bytes; a DynamoDB commit holds at most {MAX_COMMIT_BYTES} (one TransactWriteItems of at most 4 MB)"
            )));
        }
        let ids = attempt.tenant_id.len() + attempt.stream_id.len();
        if headers.len() + ids > PIECE_BYTES {
            return Err(too_large(format!(
                "its headers take {} bytes beside ids of {ids}; they must fit in one item with the ids ({PIECE_BYTES} bytes)",
                headers.len()
            )));
        }
        let pk = stream_pk(&attempt.tenant_id, &attempt.stream_id);
        let sk = commit_sk(attempt.stream_revision);
        let (first, rest) = split(events, headers.len() + ids);
        let mut main = item_key(&pk, &sk);
        main.insert("tenant_id".into(), s(&attempt.tenant_id));
        main.insert("stream_id".into(), s(&attempt.stream_id));
        if let Some(stream_type) = &attempt.stream_type {
            main.insert("stream_type".into(), s(stream_type));
        }
        main.insert("commit_id".into(), b(attempt.commit_id.as_bytes().to_vec()));
        main.insert("commit_sequence".into(), n(attempt.commit_sequence));
        main.insert("stream_revision".into(), n(attempt.stream_revision));
        main.insert("items".into(), n(attempt.events.len()));
        main.insert(
            "stamp_micros".into(),
            n(stamp_to_micros(attempt.commit_stamp)),
        );
        main.insert("headers".into(), b(headers));
        main.insert("events".into(), b(first));
        if !rest.is_empty() {
            main.insert("parts".into(), n(rest.len() + 1));
        }
        let parts = rest
            .into_iter()
            .enumerate()
            .map(|(index, piece)| {
                let mut part = item_key(&pk, part_sk(&sk, index + 1));
                part.insert("events".into(), b(piece));
                part
            })
            .collect();
        Ok(Self { main, parts, sk })
    }
}

/// The bytes of `attribute` spread over a main item and its parts (in order).
pub(crate) fn joined(
    main: &Item,
    parts: &[Item],
    attribute: &str,
    scope: &Scope,
) -> Result<Vec<u8>, StoreError> {
    let fields = Fields::new(main, scope);
    let expected = fields.parts()?;
    if parts.len() + 1 < expected {
        return Err(fields.corrupt(format!(
            "the value is split across {expected} items but {} were found",
            parts.len() + 1
        )));
    }
    let mut bytes = fields.bytes(attribute)?.to_vec();
    for part in &parts[..expected - 1] {
        bytes.extend_from_slice(Fields::new(part, scope).bytes(attribute)?);
    }
    Ok(bytes)
}

/// A commit read back from its main item and parts (in order).
pub(crate) fn raw_commit(
    main: &Item,
    parts: &[Item],
    scope: &Scope,
) -> Result<RawCommit, StoreError> {
    let fields = Fields::new(main, scope);
    Ok(RawCommit {
        checkpoint: fields.i64("checkpoint")?,
        tenant_id: fields.str("tenant_id")?.to_owned(),
        stream_id: fields.str("stream_id")?.to_owned(),
        stream_revision: fields.i64("stream_revision")?,
        commit_id: StoredId::Bytes(fields.bytes("commit_id")?.to_vec()),
        commit_sequence: fields.i64("commit_sequence")?,
        commit_stamp: StoredStamp::Micros(fields.i64("stamp_micros")?),
        headers: fields.bytes("headers")?.to_vec(),
        events: joined(main, parts, "events", scope)?,
        stream_type: fields.optional_str("stream_type")?.map(str::to_owned),
    })
}

/// A pointer in the log or a tenant's log at `checkpoint`: to the commit at sort key `target`
/// of the stream, or, without one, the notice that the stream was deleted.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pointer_item(
    pk: &str,
    checkpoint: u64,
    tenant: &str,
    stream: &str,
    stream_type: Option<&str>,
    target: Option<&str>,
    stamp_micros: i64,
) -> Item {
    let mut item = item_key(pk, pointer_sk(checkpoint));
    item.insert("checkpoint".into(), n(checkpoint));
    item.insert("tenant_id".into(), s(tenant));
    item.insert("stream_id".into(), s(stream));
    if let Some(stream_type) = stream_type {
        item.insert("stream_type".into(), s(stream_type));
    }
    match target {
        Some(target) => item.insert("target".into(), s(target)),
        None => item.insert("deleted".into(), AttributeValue::Bool(true)),
    };
    item.insert("stamp_micros".into(), n(stamp_micros));
    item
}

/// Items of one partition in sort-key order, grouped as main items each with its parts.
pub(crate) fn group_parts(items: Vec<Item>) -> Vec<(Item, Vec<Item>)> {
    let mut grouped: Vec<(Item, Vec<Item>)> = Vec::new();
    for item in items {
        match grouped.last_mut() {
            Some((_, parts)) if is_part(&item) => parts.push(item),
            _ => grouped.push((item, Vec::new())),
        }
    }
    grouped
}

/// A key attribute of an item as text (empty when missing).
pub(crate) fn key_part(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(value)) => value.clone(),
        _ => String::new(),
    }
}

/// Whether an item is a part of a larger item before it (its sort key ends in `.{part:03}`).
pub(crate) fn is_part(item: &Item) -> bool {
    sk_of(item)
        .and_then(sk_number)
        .is_some_and(|(_, part)| part)
}

/// The sort key of an item.
pub(crate) fn sk_of(item: &Item) -> Option<&str> {
    match item.get("sk") {
        Some(AttributeValue::S(sk)) => Some(sk),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_tenant_and_stream_apart() {
        assert_ne!(stream_pk("a", "bc"), stream_pk("ab", "c"));
        assert_eq!(stream_pk("a", "bc"), "S1:abc");
        let long = "x".repeat(3000);
        let hashed = stream_pk(&long, "s");
        assert!(hashed.starts_with('H') && hashed.len() == 65);
        assert_ne!(hashed, stream_pk(&long, "t"));
        assert!(head_sk(&"y".repeat(1100)).starts_with('g'));
        assert!(head_sk("y").as_str() < HEADS_END && HEADS_END < pointer_sk(0).as_str());
    }

    #[test]
    fn sort_keys_order_commits_then_their_parts() {
        let first = commit_sk(5);
        let part = part_sk(&first, 1);
        let next = commit_sk(6);
        assert!(first < part && part < with_parts(&first) && with_parts(&first) < next);
        assert_eq!(sk_number(&part), Some((5, true)));
        assert_eq!(sk_number(&next), Some((6, false)));
        assert_eq!(sk_number(&pointer_sk(u64::MAX)), Some((u64::MAX, false)));
    }

    #[test]
    fn a_body_splits_into_pieces_that_fit_an_item() {
        let (first, rest) = split(vec![7; PIECE_BYTES * 2 + 10], 100);
        assert_eq!(first.len(), PIECE_BYTES - 100);
        assert_eq!(
            rest.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![PIECE_BYTES, 110]
        );
        let (first, rest) = split(vec![1; 10], 100);
        assert_eq!((first.len(), rest.len()), (10, 0));
    }
}
