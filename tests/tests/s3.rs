//! The contract suite against S3, each test in a bucket of its own.
#![cfg(feature = "s3")]

use std::sync::Arc;

use aett::{ConflictDetector, S3Store};
use aett_conformance::s3::{commit_key, store_with};
use aws_sdk_s3::primitives::ByteStream;

struct S3Harness;

impl aett_conformance::Harness for S3Harness {
    type Store = S3Store;

    /// S3 has no transaction across objects.
    const EXACTLY_ONCE: bool = false;

    async fn store(&self, detector: ConflictDetector) -> Arc<S3Store> {
        store_with(detector).await
    }

    async fn corrupt_events(
        &self,
        store: &S3Store,
        tenant: &str,
        stream: &str,
        commit_sequence: u64,
    ) -> bool {
        // A commit is stored twice, at its stream key and in its log slot: both are damaged.
        let key = commit_key(store, tenant, stream, commit_sequence);
        let object = store
            .client()
            .get_object()
            .bucket(store.bucket())
            .key(&key)
            .send()
            .await
            .expect("read the commit to damage");
        let bytes = object.body.collect().await.expect("its bytes").to_vec();
        // The meta line and the headers line stay; the events become bytes that are not JSON.
        let mut lines = bytes.splitn(3, |&b| b == b'\n');
        let meta = lines.next().expect("a meta line");
        let checkpoint = serde_json::from_slice::<serde_json::Value>(meta).expect("meta JSON")
            ["checkpoint"]
            .as_u64()
            .expect("a checkpoint");
        let mut damaged = meta.to_vec();
        damaged.push(b'\n');
        damaged.extend_from_slice(lines.next().expect("a headers line"));
        damaged.extend_from_slice(b"\nnot json");
        let slot = format!("{}log/{checkpoint:020}", store.prefix());
        for key in [key, slot] {
            store
                .client()
                .put_object()
                .bucket(store.bucket())
                .key(&key)
                .body(ByteStream::from(damaged.clone()))
                .send()
                .await
                .expect("damage the commit");
        }
        true
    }
}

aett_conformance::contract_suite!(S3Harness);
