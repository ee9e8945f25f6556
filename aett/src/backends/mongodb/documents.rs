//! Commits, snapshots and checkpoints as BSON documents, and JSON text to BSON and back.
//!
//! Event bodies and headers are stored as BSON values, so they can be queried in the shell
//! (`db.commits.find({"events.topic": "…"})`), and read back as the same JSON: key order is
//! kept, integers are 64-bit (`Int64`), other numbers doubles. An integer beyond `i64` has no
//! BSON form and is refused when the commit is written; a stored value that has no JSON form
//! (a date, an ObjectId written by another program) is damage when read.

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{
    doc, Binary, Bson, DateTime as BsonDateTime, Document, RawBsonRef, RawDocument,
};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use uuid::Uuid;

use crate::backends::kit::sql::{clamp, RawCommit, StoredId, StoredStamp};
use crate::backends::kit::stamp_to_micros;
use crate::error::{Scope, StoreError};
use crate::model::CommitAttempt;

/// The `_id` of the commits collection's own document: it marks the collection as aett's,
/// holds its schema version, and keeps the checkpoint order from going back when a purge
/// removes the newest commits (its `checkpoint` is the highest one ever removed).
pub(crate) const MARKER_ID: &str = "aett";

/// The schema version this release writes.
pub(crate) const SCHEMA_VERSION: i32 = 1;

/// Parses JSON text into a BSON value, keeping key order and 64-bit integers.
pub(crate) fn json_to_bson(json: &[u8]) -> Result<Bson, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = JsonValue
        .deserialize(&mut deserializer)
        .map_err(|e| e.to_string())?;
    deserializer.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// Writes a BSON value as JSON text.
pub(crate) fn bson_to_json(value: RawBsonRef<'_>) -> Result<Vec<u8>, String> {
    serde_json::to_vec(&AsJson(value)).map_err(|e| e.to_string())
}

struct JsonValue;

impl<'de> DeserializeSeed<'de> for JsonValue {
    type Value = Bson;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Bson, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonValue {
    type Value = Bson;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Bson, E> {
        Ok(Bson::Boolean(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Bson, E> {
        Ok(Bson::Int64(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Bson, E> {
        i64::try_from(v).map(Bson::Int64).map_err(|_| {
            E::custom(format!(
                "the integer {v} is beyond BSON's 64-bit signed integers"
            ))
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Bson, E> {
        Ok(Bson::Double(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Bson, E> {
        Ok(Bson::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Bson, E> {
        Ok(Bson::String(v))
    }

    fn visit_unit<E>(self) -> Result<Bson, E> {
        Ok(Bson::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bson, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(JsonValue)? {
            items.push(item);
        }
        Ok(Bson::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bson, A::Error> {
        let mut document = Document::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.contains('\0') {
                return Err(serde::de::Error::custom(format!(
                    "the key {key:?} holds a NUL character, which BSON keys cannot"
                )));
            }
            let value = map.next_value_seed(JsonValue)?;
            document.insert(key, value);
        }
        Ok(Bson::Document(document))
    }
}

/// A stored BSON value, serialised as the JSON it was written from.
struct AsJson<'a>(RawBsonRef<'a>);

impl Serialize for AsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            RawBsonRef::Double(v) if v.is_finite() => serializer.serialize_f64(v),
            RawBsonRef::String(v) => serializer.serialize_str(v),
            RawBsonRef::Boolean(v) => serializer.serialize_bool(v),
            RawBsonRef::Null => serializer.serialize_unit(),
            RawBsonRef::Int32(v) => serializer.serialize_i32(v),
            RawBsonRef::Int64(v) => serializer.serialize_i64(v),
            RawBsonRef::Array(items) => {
                let mut seq = serializer.serialize_seq(None)?;
                for item in items {
                    seq.serialize_element(&AsJson(item.map_err(S::Error::custom)?))?;
                }
                seq.end()
            }
            RawBsonRef::Document(document) => {
                let mut map = serializer.serialize_map(None)?;
                for element in document {
                    let (key, value) = element.map_err(S::Error::custom)?;
                    map.serialize_entry(key, &AsJson(value))?;
                }
                map.end()
            }
            other => Err(S::Error::custom(format!(
                "a BSON {:?} value has no JSON form",
                other.element_type()
            ))),
        }
    }
}

/// A UUID as BSON binary of subtype 4, as drivers and the shell show UUIDs.
pub(crate) fn uuid_bson(id: Uuid) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Uuid,
        bytes: id.as_bytes().to_vec(),
    })
}

/// An attempt as the document to insert, all but its checkpoint.
pub(crate) fn commit_document(attempt: &CommitAttempt) -> Result<Document, StoreError> {
    let (headers, events) = crate::backends::kit::sql::encode_payload(
        &attempt.tenant_id,
        &attempt.stream_id,
        &attempt.headers,
        &attempt.events,
    )?;
    let unstorable = |what: &str, reason: String| StoreError::InvalidCommit {
        tenant: attempt.tenant_id.clone(),
        stream: attempt.stream_id.clone(),
        commit_sequence: attempt.commit_sequence,
        reason: format!("its {what} cannot be stored as BSON: {reason}"),
    };
    let headers = json_to_bson(&headers).map_err(|e| unstorable("headers", e))?;
    let events = json_to_bson(&events).map_err(|e| unstorable("events", e))?;
    let items = i32::try_from(attempt.events.len()).map_err(|_| StoreError::InvalidCommit {
        tenant: attempt.tenant_id.clone(),
        stream: attempt.stream_id.clone(),
        commit_sequence: attempt.commit_sequence,
        reason: "more than i32::MAX events in one commit".to_owned(),
    })?;
    let micros = stamp_to_micros(attempt.commit_stamp);
    Ok(doc! {
        "tenant_id": &attempt.tenant_id,
        "stream_id": &attempt.stream_id,
        "stream_type": attempt.stream_type.as_deref().map_or(Bson::Null, Bson::from),
        "commit_id": uuid_bson(attempt.commit_id),
        "commit_sequence": clamp(attempt.commit_sequence),
        "stream_revision": clamp(attempt.stream_revision),
        "first_revision": clamp(attempt.first_revision()),
        "items": items,
        // For people and tools; `stamp_micros` is the exact stamp aett reads.
        "commit_stamp": BsonDateTime::from_millis(micros.div_euclid(1000)),
        "stamp_micros": micros,
        "headers": headers,
        "events": events,
    })
}

/// A stored document's fields, read with damage reported as [`StoreError::Corrupt`].
pub(crate) struct Fields<'a> {
    pub document: &'a RawDocument,
    scope: &'a Scope,
    /// The stream the document belongs to, once read: damage then names it.
    stream: Option<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    pub fn new(document: &'a RawDocument, scope: &'a Scope) -> Self {
        Self {
            document,
            scope,
            stream: None,
        }
    }

    /// Damage to this document. The scope, sequence and checkpoint are read only here: fields
    /// are read for every document, errors are rare.
    pub fn corrupt(&self, reason: String) -> StoreError {
        let number = |key| {
            self.document
                .get_i64(key)
                .ok()
                .and_then(|n| u64::try_from(n).ok())
        };
        StoreError::Corrupt {
            scope: match self.stream {
                Some((tenant, stream)) => Scope::stream(tenant, stream),
                None => self.scope.clone(),
            },
            commit_sequence: number("commit_sequence"),
            checkpoint: number("checkpoint"),
            reason,
        }
    }

    fn get(&self, key: &str) -> Result<RawBsonRef<'a>, StoreError> {
        match self.document.get(key) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(self.corrupt(format!("the field `{key}` is missing"))),
            Err(e) => Err(self.corrupt(format!("the document does not read back: {e}"))),
        }
    }

    pub fn i64(&self, key: &str) -> Result<i64, StoreError> {
        match self.get(key)? {
            RawBsonRef::Int64(v) => Ok(v),
            RawBsonRef::Int32(v) => Ok(i64::from(v)),
            other => Err(self.corrupt(format!(
                "the field `{key}` is a {:?}, not an integer",
                other.element_type()
            ))),
        }
    }

    pub fn str(&self, key: &str) -> Result<&'a str, StoreError> {
        match self.get(key)? {
            RawBsonRef::String(v) => Ok(v),
            other => Err(self.corrupt(format!(
                "the field `{key}` is a {:?}, not a string",
                other.element_type()
            ))),
        }
    }

    pub fn optional_str(&self, key: &str) -> Result<Option<&'a str>, StoreError> {
        match self.document.get(key) {
            Ok(None) | Ok(Some(RawBsonRef::Null)) => Ok(None),
            _ => self.str(key).map(Some),
        }
    }

    pub fn bytes(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        match self.get(key)? {
            RawBsonRef::Binary(binary) => Ok(binary.bytes.to_vec()),
            other => Err(self.corrupt(format!(
                "the field `{key}` is a {:?}, not binary",
                other.element_type()
            ))),
        }
    }

    /// A field written from JSON, as JSON text again.
    pub fn json(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        bson_to_json(self.get(key)?)
            .map_err(|e| self.corrupt(format!("the field `{key}` does not read back: {e}")))
    }
}

/// A stored commit (or deletion notice) as the row the shared decoding checks.
pub(crate) fn raw_commit(document: &RawDocument, scope: &Scope) -> Result<RawCommit, StoreError> {
    let mut fields = Fields::new(document, scope);
    let (tenant_id, stream_id) = (fields.str("tenant_id")?, fields.str("stream_id")?);
    // From here on, damage names the stream.
    fields.stream = Some((tenant_id, stream_id));
    Ok(RawCommit {
        checkpoint: fields.i64("checkpoint")?,
        tenant_id: tenant_id.to_owned(),
        stream_id: stream_id.to_owned(),
        stream_revision: fields.i64("stream_revision")?,
        commit_id: StoredId::Bytes(fields.bytes("commit_id")?),
        commit_sequence: fields.i64("commit_sequence")?,
        commit_stamp: StoredStamp::Micros(fields.i64("stamp_micros")?),
        headers: fields.json("headers")?,
        events: fields.json("events")?,
        stream_type: fields.optional_str("stream_type")?.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_bson() {
        let text = r#"{"z":1,"a":[1,2.5,"ü",null,true],"n":9223372036854775807,"m":-9223372036854775808,"d":{"$x":{"a.b":1.5e+300}},"e":{},"f":-0.25}"#;
        let bson = json_to_bson(text.as_bytes()).unwrap();
        assert!(
            matches!(&bson, Bson::Document(d) if d.keys().next().map(String::as_str) == Some("z"))
        );
        let raw = mongodb::bson::RawDocumentBuf::from_document(&doc! {"v": bson}).unwrap();
        let back = bson_to_json(raw.get("v").unwrap().unwrap()).unwrap();
        assert_eq!(String::from_utf8(back).unwrap(), text);
    }

    #[test]
    fn what_bson_cannot_hold_is_refused() {
        assert!(json_to_bson(b"18446744073709551615")
            .unwrap_err()
            .contains("64-bit"));
        assert!(json_to_bson(br#"{"a\u0000":1}"#)
            .unwrap_err()
            .contains("NUL"));
        assert!(json_to_bson(b"{").is_err());
    }

    #[test]
    fn values_without_a_json_form_are_errors() {
        let raw =
            mongodb::bson::RawDocumentBuf::from_document(&doc! {"v": BsonDateTime::from_millis(5)})
                .unwrap();
        assert!(bson_to_json(raw.get("v").unwrap().unwrap()).is_err());
    }
}
