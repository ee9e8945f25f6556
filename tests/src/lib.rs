//! The conformance suite of aett storage backends: every behaviour a backend must have,
//! written once against the storage traits (as NEventStore's persistence acceptance tests
//! are), run by every backend aett ships and ready for one you write.
//!
//! A backend runs all of it with one macro call in a test file of its own, given a [`Harness`]
//! that hands each behaviour a fresh, initialised store:
//!
//! ```text
//! // tests/conformance.rs of a crate with a backend `MyStore`
//! // [dev-dependencies] aett-conformance, tokio (macros, rt-multi-thread)
//! use std::sync::Arc;
//! use aett::ConflictDetector;
//!
//! struct MyHarness;
//!
//! impl aett_conformance::Harness for MyHarness {
//!     type Store = MyStore;
//!     const EXACTLY_ONCE: bool = false; // no read-model transactions in this store
//!
//!     async fn store(&self, detector: ConflictDetector) -> Arc<MyStore> {
//!         let store = MyStore::connect_fresh(detector).await; // a store no other test sees
//!         aett::PersistenceManagement::initialize(&store).await.unwrap();
//!         Arc::new(store)
//!     }
//!
//!     async fn corrupt_events(&self, store: &MyStore, tenant: &str, stream: &str, sequence: u64) -> bool {
//!         store.overwrite_events_with_garbage(tenant, stream, sequence).await // or `false`
//!     }
//! }
//!
//! aett_conformance::contract_suite!(MyHarness);
//! ```
//!
//! The store implements every role of [`aett::EventStore`] (commits, snapshots, the log,
//! checkpoints, management). Each behaviour is a `#[tokio::test]` named after what it checks
//! and panics with a message saying what broke; they are listed in [`contract_suite!`], and
//! this crate's own tests make sure nothing written in [`contract`] is left off that list.
//! The in-memory, SQLite, PostgreSQL, MongoDB, DynamoDB and S3 backends all run it
//! (`tests/tests/{memory,sqlite,postgres,mongodb,dynamodb,s3}.rs`).

#![warn(missing_docs)]

pub mod contract;
pub mod domain;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod evolution;
pub mod log_order;
pub mod migration;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod read_side;
#[cfg(feature = "s3")]
pub mod s3;

use std::future::Future;
use std::sync::Arc;

use aett::{ConflictDetector, EventStore};

/// What the suite needs from a backend.
pub trait Harness: Send + Sync {
    /// The backend's store type.
    type Store: EventStore + 'static;

    /// Whether the backend runs projections exactly once (its checkpoints share a transaction
    /// with a read model in its database); a backend that cannot must refuse it, typed.
    const EXACTLY_ONCE: bool;

    /// A fresh, initialised, empty store that decides conflicts with `detector`.
    /// Each call gives a store no other call sees.
    fn store(&self, detector: ConflictDetector) -> impl Future<Output = Arc<Self::Store>> + Send;

    /// Overwrites the stored events of one commit with bytes that are not JSON, as disk damage
    /// or a faulty writer would. Returns `false` for a backend that holds no bytes (in-memory),
    /// where such damage cannot exist.
    fn corrupt_events(
        &self,
        store: &Self::Store,
        tenant: &str,
        stream: &str,
        commit_sequence: u64,
    ) -> impl Future<Output = bool> + Send;
}

/// Runs the whole conformance suite against a backend: one `#[tokio::test]` per behaviour,
/// each on a fresh store from the harness expression.
///
/// ```text
/// aett_conformance::contract_suite!(MyHarness::new());
/// ```
///
/// The behaviours are this macro's one list (`contract_suite!(@names)` gives their names), and
/// the crate's own tests check that every behaviour written in [`contract`] is on it: a new
/// behaviour reaches every backend that runs the suite, or the build of the suite fails.
#[macro_export]
macro_rules! contract_suite {
    (@names) => {
        $crate::contract_suite! { @list names }
    };
    ($harness:expr) => {
        $crate::contract_suite! { @list tests $harness }
    };
    // The one list of behaviours.
    (@list $($mode:tt)*) => {
        $crate::contract_suite! { @$($mode)*;
            initialize_is_idempotent,
            schema_version_is_what_initialize_recorded,
            evolved_events_load_through_upcasters_and_aliases,
            snapshots_of_another_memento_version_are_replayed_past,
            commit_round_trips_every_field,
            revision_ranges,
            opening_a_missing_stream_from_a_revision_is_stream_not_found,
            reads_up_to_a_point_in_time,
            checkpoints_increase_across_tenants,
            reading_from_a_checkpoint_returns_every_later_commit_once,
            duplicate_commit_is_recognised,
            taken_sequence_without_conflict_is_non_conflicting,
            taken_sequence_with_conflict_is_conflicting,
            conflicts_are_judged_only_against_unseen_commits,
            strict_detector_conflicts_on_same_topic,
            invalid_commits_are_rejected,
            concurrent_writers_on_one_stream_lose_and_duplicate_nothing,
            snapshots_newest_at_or_below,
            load_from_snapshot_replays_only_later_events,
            custom_memento_round_trips,
            same_stream_id_in_two_tenants_is_two_streams,
            purge_removes_one_tenant_only,
            purged_checkpoints_are_not_handed_out_again,
            drop_removes_everything,
            awkward_ids_round_trip,
            commit_of_ten_thousand_events,
            stream_of_a_thousand_commits_loads_at_version_one_thousand,
            corrupt_data_is_a_typed_error_and_the_rest_stays_readable,
            unknown_topic_and_undecodable_body_are_typed_errors,
            aggregate_repository_round_trip,
            aggregate_repository_versions_and_time,
            aggregate_repository_snapshots,
            aggregate_update_retries_on_concurrency,
            saga_repository_round_trip,
            event_stream_round_trip,
            a_damaged_commit_ends_a_read_after_every_intact_commit_before_it,
            reading_one_tenants_log_from_a_checkpoint,
            time_bounds_at_the_ends_of_time,
            read_streams_move_into_spawned_tasks,
            saving_an_aggregate_loaded_inside_a_commit_is_a_concurrency_conflict,
            saga_fed_messages_saves_its_events_and_every_command,
            a_save_whose_acknowledgement_was_lost_is_not_stored_twice,
            snapshots_for_replay_are_the_stored_snapshots,
            deleting_a_stream_removes_it_and_tells_the_log,
            truncating_a_stream_keeps_the_latest_state_and_refuses_the_lost_past,
            streams_that_need_a_snapshot,
            stream_types_are_recorded_and_filter_the_log,
            loading_a_stream_as_another_type_is_a_typed_error,
            a_projection_resumes_from_its_stored_checkpoint,
            a_projection_follows_new_commits_live,
            eight_concurrent_writers_miss_no_event,
            a_projection_reads_only_what_its_filter_lets_through,
            a_failing_handler_stops_the_runner_before_its_commit,
            a_damaged_commit_stops_the_runner_or_is_skipped,
            one_projection_runs_in_one_runner_at_a_time,
            concurrent_runners_get_one_lease,
            exactly_once_runs_or_is_refused,
            the_saga_runner_routes_events_and_dispatches_commands,
            saga_commands_survive_a_crash_between_save_and_dispatch,
            saga_update_retries_on_concurrency,
        }
    };
    (@names; $($name:ident),* $(,)?) => {
        [$(::core::stringify!($name)),*]
    };
    (@tests $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let harness = $harness;
                $crate::contract::$name(&harness).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// Every `pub async fn name<H: Harness>` of the contract and read-side modules.
    fn written() -> std::collections::BTreeSet<String> {
        [include_str!("contract.rs"), include_str!("read_side.rs")]
            .iter()
            .flat_map(|source| source.lines())
            .filter_map(|line| {
                let rest = line.strip_prefix("pub async fn ")?;
                let (name, generics) = rest.split_once('<')?;
                generics.starts_with("H: Harness>").then(|| name.to_owned())
            })
            .collect()
    }

    #[test]
    fn every_written_behaviour_is_on_the_list_once() {
        let listed: Vec<&str> = crate::contract_suite!(@names).to_vec();
        let unique: std::collections::BTreeSet<String> =
            listed.iter().map(|name| name.to_string()).collect();
        assert_eq!(unique.len(), listed.len(), "a behaviour is listed twice");
        let written = written();
        assert!(written.len() > 50, "the source scan found the behaviours");
        let missing: Vec<_> = written.difference(&unique).collect();
        assert!(
            missing.is_empty(),
            "written but not in contract_suite!'s list: {missing:?}"
        );
    }
}
