//! Events that changed shape and name over time: versions with typed and JSON upcasters, topic
//! aliases, and an enum with a topic per variant. The contract suite stores their old shapes
//! on every backend and loads them; `tests/evolution.rs` tests the rest.

use aett::{AggregateState, Apply};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version 1 of [`Deposited`]: whole units.
#[derive(Debug, Deserialize)]
pub struct DepositedV1 {
    /// Whole units.
    pub amount: u64,
}

/// Version 2 of [`Deposited`]: cents.
#[derive(Debug, Deserialize)]
pub struct DepositedV2 {
    /// Cents.
    pub cents: u64,
}

impl From<DepositedV1> for DepositedV2 {
    fn from(v1: DepositedV1) -> Self {
        Self {
            cents: v1.amount * 100,
        }
    }
}

/// Money in, at version 3: cents and a currency. Once stored as `test.account.credited`.
#[aett::event(
    topic = "test.account.deposited",
    aliases("test.account.credited"),
    version = 3,
    upcast(1 = DepositedV1, 2 = DepositedV2)
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deposited {
    /// Cents.
    pub cents: u64,
    /// The currency.
    pub currency: String,
}

impl From<DepositedV2> for Deposited {
    fn from(v2: DepositedV2) -> Self {
        Self {
            cents: v2.cents,
            currency: "EUR".into(),
        }
    }
}

/// Money out, at version 2; version 1 held `amount` in whole units and no reason.
#[aett::event(topic = "test.account.withdrawn", version = 2, upcast(1 = json(withdrawn_v1)))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withdrawn {
    /// Cents.
    pub cents: u64,
    /// Why.
    pub reason: String,
}

/// `{"amount": 3}` → `{"cents": 300, "reason": "unknown"}`.
pub fn withdrawn_v1(mut body: Value) -> Result<Value, String> {
    let amount = body
        .get("amount")
        .and_then(Value::as_u64)
        .ok_or("a version-1 withdrawal has no amount")?;
    body["cents"] = (amount * 100).into();
    body["reason"] = "unknown".into();
    Ok(body)
}

/// Holds on an account: one enum, a topic per variant, at version 2 (version 1 called the
/// reason `why`); `Placed` was once stored as `test.account.frozen`.
#[aett::event(version = 2, upcast(1 = json(hold_v1)))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Hold {
    /// A hold placed.
    #[event(topic = "test.account.hold_placed", aliases("test.account.frozen"))]
    Placed {
        /// Why.
        reason: String,
    },
    /// Extended by some days.
    #[event(topic = "test.account.hold_extended")]
    Extended(u32),
    /// Lifted.
    #[event(topic = "test.account.hold_lifted")]
    Lifted,
}

/// Renames version 1's `why` to `reason`.
pub fn hold_v1(mut body: Value) -> Result<Value, String> {
    if let Some(why) = body.as_object_mut().and_then(|fields| fields.remove("why")) {
        body["reason"] = why;
    }
    Ok(body)
}

/// An account whose events evolved, and whose memento is at version 2.
#[derive(Debug, Default, aett::Aggregate, Serialize, Deserialize)]
#[aggregate(
    name = "test.account",
    events(Deposited, Withdrawn, Hold),
    memento_version = 2
)]
pub struct Account {
    #[serde(skip)]
    state: AggregateState,
    /// Cents.
    pub balance: i64,
    /// The currencies seen.
    pub currencies: Vec<String>,
    /// The reasons of withdrawals.
    pub reasons: Vec<String>,
    /// The reason of the hold in place, if any.
    pub hold: Option<String>,
    /// Days holds were extended by.
    pub extended: u32,
}

impl Apply<Deposited> for Account {
    fn apply(&mut self, event: &Deposited) {
        self.balance += event.cents as i64;
        if !self.currencies.contains(&event.currency) {
            self.currencies.push(event.currency.clone());
        }
    }
}

impl Apply<Withdrawn> for Account {
    fn apply(&mut self, event: &Withdrawn) {
        self.balance -= event.cents as i64;
        self.reasons.push(event.reason.clone());
    }
}

impl Apply<Hold> for Account {
    fn apply(&mut self, event: &Hold) {
        match event {
            Hold::Placed { reason } => self.hold = Some(reason.clone()),
            Hold::Extended(days) => self.extended += days,
            Hold::Lifted => self.hold = None,
        }
    }
}
