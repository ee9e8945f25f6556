//! Snapshots: an aggregate's memento at a stream revision, so a load need not replay from the start.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::Headers;

/// The state of one stream at one revision, as its aggregate's memento (JSON text).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The tenant the stream belongs to.
    pub tenant_id: String,
    /// The stream the snapshot was taken of.
    pub stream_id: String,
    /// The revision of the last event folded into the memento.
    pub stream_revision: u64,
    /// The sequence of the commit that holds that event.
    pub commit_sequence: u64,
    /// The memento, as JSON text.
    pub payload: Box<RawValue>,
    /// Headers given when the snapshot was taken.
    pub headers: Headers,
}

impl PartialEq for Snapshot {
    fn eq(&self, other: &Self) -> bool {
        self.tenant_id == other.tenant_id
            && self.stream_id == other.stream_id
            && self.stream_revision == other.stream_revision
            && self.commit_sequence == other.commit_sequence
            && self.payload.get() == other.payload.get()
            && self.headers == other.headers
    }
}

impl Eq for Snapshot {}
