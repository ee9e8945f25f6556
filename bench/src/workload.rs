//! What every scenario writes and reads: one event type, one aggregate, and the sizes.

use aett::{Aggregate, AggregateState, Apply, BoxError, EventContext, Project};
use serde::{Deserialize, Serialize};

/// The benchmark's event: about 100 bytes of JSON, like a typical small domain event.
#[aett::event(topic = "bench.deposited")]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deposited {
    /// Account id.
    pub account: String,
    /// Amount.
    pub amount: u64,
    /// Free text.
    pub note: String,
}

/// A deposit with a recognisable amount.
pub fn deposit(n: u64) -> Deposited {
    Deposited {
        account: "account-0042".to_owned(),
        amount: n,
        note: "salary for the month, paid on time".to_owned(),
    }
}

/// The aggregate loaded by the load scenarios.
#[derive(Debug, Default, Aggregate, Serialize, Deserialize)]
#[aggregate(events(Deposited))]
pub struct Account {
    #[serde(skip)]
    state: AggregateState,
    /// The running balance.
    pub balance: u64,
}

impl Apply<Deposited> for Account {
    fn apply(&mut self, event: &Deposited) {
        self.balance += event.amount;
    }
}

/// How much each scenario does.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sizes {
    /// Single-event commits, spread over 100 streams.
    pub single_commits: u64,
    /// Commits of 100 events.
    pub batch_commits: u64,
    /// Commits per writer, 8 writers on 8 streams.
    pub parallel_commits: u64,
    /// Commits per writer, 8 writers on one stream.
    pub contended_commits: u64,
    /// Events in the aggregate loaded.
    pub load_events: u64,
    /// Events read from checkpoint 0.
    pub read_all_events: u64,
    /// Events replayed while peak memory is measured.
    pub rss_events: u64,
    /// Single-event commits whose commit-to-handler latency is measured.
    pub latency_commits: u64,
}

impl Sizes {
    /// Tiny: for the test suite's smoke run, which checks that the benchmark still works.
    pub const SMOKE: Sizes = Sizes {
        single_commits: 20,
        batch_commits: 2,
        parallel_commits: 3,
        contended_commits: 3,
        load_events: 100,
        read_all_events: 1_000,
        rss_events: 2_000,
        latency_commits: 20,
    };

    /// A run of well under two minutes.
    pub const QUICK: Sizes = Sizes {
        single_commits: 1_000,
        batch_commits: 50,
        parallel_commits: 100,
        contended_commits: 25,
        load_events: 10_000,
        read_all_events: 100_000,
        rss_events: 1_000_000,
        latency_commits: 300,
    };

    /// The sizes BENCHMARKS.md reports.
    pub const FULL: Sizes = Sizes {
        single_commits: 5_000,
        batch_commits: 200,
        parallel_commits: 500,
        contended_commits: 100,
        load_events: 10_000,
        read_all_events: 100_000,
        rss_events: 1_000_000,
        latency_commits: 1_000,
    };
}

/// Sums every deposit in the log: the read-everything scenario's projection.
#[derive(Debug, Default, aett::Projection)]
#[projection(name = "bench.sum", events(Deposited))]
pub struct Sum {
    /// Deposits seen.
    pub count: u64,
    /// Their amounts, added up (wrapping).
    pub sum: u64,
}

impl Project<Deposited> for Sum {
    async fn project(&mut self, event: Deposited, _: &EventContext<'_>) -> Result<(), BoxError> {
        self.sum = self.sum.wrapping_add(event.amount);
        self.count += 1;
        Ok(())
    }
}
