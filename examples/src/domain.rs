//! The bank's domain: accounts, the events they raise, and the transfer saga.

use aett::{
    Aggregate, AggregateState, Apply, Correlate, EventContext, Saga, SagaState, Transition,
};
use serde::{Deserialize, Serialize};

/// An account was opened. Version 2: the first release of the bank had one currency and did
/// not record it ([`AccountOpenedV1`]); accounts it opened still load, as dollar accounts.
#[aett::event(topic = "bank.account_opened", version = 2, upcast(1 = AccountOpenedV1))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountOpened {
    /// Who owns it.
    pub owner: String,
    /// The account's currency.
    pub currency: String,
}

/// How the first release stored [`AccountOpened`].
#[derive(Debug, Deserialize)]
pub struct AccountOpenedV1 {
    /// Who owns it.
    pub owner: String,
}

impl From<AccountOpenedV1> for AccountOpened {
    fn from(v1: AccountOpenedV1) -> Self {
        Self {
            owner: v1.owner,
            currency: "USD".into(),
        }
    }
}

/// Money went in.
#[aett::event(topic = "bank.deposited")]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deposited {
    /// How much, in cents.
    pub amount: u64,
    /// The transfer this deposit completes, if any.
    pub transfer: Option<String>,
}

/// Money went out.
#[aett::event(topic = "bank.withdrawn")]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Withdrawn {
    /// How much, in cents.
    pub amount: u64,
    /// The transfer this withdrawal belongs to, if any.
    pub transfer: Option<String>,
}

/// A transfer between two accounts was asked for (raised by the paying account).
#[aett::event(topic = "bank.transfer_started")]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferStarted {
    /// The transfer's id: the id of the saga that carries it out.
    pub transfer: String,
    /// Paying account.
    pub from: String,
    /// Receiving account.
    pub to: String,
    /// How much, in cents.
    pub amount: u64,
}

/// Command: take money out of an account for a transfer.
#[aett::event(topic = "bank.command.withdraw")]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WithdrawFunds {
    /// The account.
    pub account: String,
    /// How much, in cents.
    pub amount: u64,
    /// The transfer.
    pub transfer: String,
}

/// Command: put money into an account for a transfer.
#[aett::event(topic = "bank.command.deposit")]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepositFunds {
    /// The account.
    pub account: String,
    /// How much, in cents.
    pub amount: u64,
    /// The transfer.
    pub transfer: String,
}

/// Whole dollars in cents, the unit amounts are kept in.
pub const fn dollars(amount: u64) -> u64 {
    amount * 100
}

/// Formats cents as dollars.
pub fn money(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// Why a command on an account was refused.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// Amounts must be positive.
    #[error("amounts must be positive")]
    ZeroAmount,
    /// The account is not open.
    #[error("account `{0}` is not open")]
    NotOpen(String),
    /// The account is already open.
    #[error("account `{0}` is already open")]
    AlreadyOpen(String),
    /// Not enough money.
    #[error("account `{account}` holds {}, cannot pay {}", money(*balance), money(*amount))]
    InsufficientFunds {
        /// The account.
        account: String,
        /// Its balance.
        balance: u64,
        /// What was asked.
        amount: u64,
    },
}

/// A bank account.
#[derive(Debug, Default, Aggregate, Serialize, Deserialize)]
// The memento gained `currency` with version 2 of `AccountOpened`: snapshots taken before
// it are passed over (and the account replayed) rather than read without it.
#[aggregate(
    name = "account",
    events(AccountOpened, Deposited, Withdrawn, TransferStarted),
    memento_version = 2
)]
pub struct Account {
    #[serde(skip)]
    state: AggregateState,
    /// The owner; empty until opened.
    pub owner: String,
    /// The currency; empty until opened.
    pub currency: String,
    /// The balance, in cents.
    pub balance: u64,
}

impl Apply<AccountOpened> for Account {
    fn apply(&mut self, event: &AccountOpened) {
        self.owner.clone_from(&event.owner);
        self.currency.clone_from(&event.currency);
    }
}

impl Apply<Deposited> for Account {
    fn apply(&mut self, event: &Deposited) {
        self.balance += event.amount;
    }
}

impl Apply<Withdrawn> for Account {
    fn apply(&mut self, event: &Withdrawn) {
        self.balance -= event.amount;
    }
}

/// Asking for a transfer moves no money yet: the transfer saga withdraws it.
impl Apply<TransferStarted> for Account {
    fn apply(&mut self, _: &TransferStarted) {}
}

impl Account {
    /// Whether the account has been opened.
    pub fn is_open(&self) -> bool {
        !self.owner.is_empty()
    }

    /// Opens the account for `owner`, in `currency`.
    pub fn open(&mut self, owner: &str, currency: &str) -> Result<(), BankError> {
        if self.is_open() {
            return Err(BankError::AlreadyOpen(self.id().to_owned()));
        }
        self.raise(AccountOpened {
            owner: owner.to_owned(),
            currency: currency.to_owned(),
        });
        Ok(())
    }

    /// Pays `amount` in.
    pub fn deposit(&mut self, amount: u64, transfer: Option<String>) -> Result<(), BankError> {
        self.require_open(amount)?;
        self.raise(Deposited { amount, transfer });
        Ok(())
    }

    /// Takes `amount` out, if the balance allows.
    pub fn withdraw(&mut self, amount: u64, transfer: Option<String>) -> Result<(), BankError> {
        self.require_open(amount)?;
        if amount > self.balance {
            return Err(BankError::InsufficientFunds {
                account: self.id().to_owned(),
                balance: self.balance,
                amount,
            });
        }
        self.raise(Withdrawn { amount, transfer });
        Ok(())
    }

    /// Asks for `amount` to be moved to `to` by the transfer saga `transfer`, if the balance
    /// allows it now.
    pub fn start_transfer(
        &mut self,
        transfer: &str,
        to: &str,
        amount: u64,
    ) -> Result<(), BankError> {
        self.require_open(amount)?;
        if amount > self.balance {
            return Err(BankError::InsufficientFunds {
                account: self.id().to_owned(),
                balance: self.balance,
                amount,
            });
        }
        let from = self.id().to_owned();
        self.raise(TransferStarted {
            transfer: transfer.to_owned(),
            from,
            to: to.to_owned(),
            amount,
        });
        Ok(())
    }

    fn require_open(&self, amount: u64) -> Result<(), BankError> {
        if !self.is_open() {
            return Err(BankError::NotOpen(self.id().to_owned()));
        }
        if amount == 0 {
            return Err(BankError::ZeroAmount);
        }
        Ok(())
    }
}

/// Moves money between two accounts: withdraw first, then deposit. Run from the log by a
/// [`aett::SagaRunner`]: each event goes to the transfer it names.
#[derive(Debug, Default, Saga)]
#[saga(
    name = "transfer",
    events(TransferStarted, Withdrawn, Deposited),
    correlated
)]
pub struct Transfer {
    state: SagaState,
    /// The transfer as started.
    pub started: Option<TransferStarted>,
    /// Whether the money has left the paying account.
    pub withdrawn: bool,
    /// Whether the money has arrived.
    pub completed: bool,
}

impl Transition<TransferStarted> for Transfer {
    fn transition(&mut self, event: &TransferStarted) {
        self.started = Some(event.clone());
        self.dispatch(WithdrawFunds {
            account: event.from.clone(),
            amount: event.amount,
            transfer: self.id().to_owned(),
        });
    }
}

impl Transition<Withdrawn> for Transfer {
    fn transition(&mut self, _: &Withdrawn) {
        self.withdrawn = true;
        if let Some(started) = &self.started {
            let command = DepositFunds {
                account: started.to.clone(),
                amount: started.amount,
                transfer: self.id().to_owned(),
            };
            self.dispatch(command);
        }
    }
}

impl Transition<Deposited> for Transfer {
    fn transition(&mut self, _: &Deposited) {
        self.completed = true;
    }
}

impl Correlate<TransferStarted> for Transfer {
    fn correlation_id(event: &TransferStarted, _: &EventContext<'_>) -> Option<String> {
        Some(event.transfer.clone())
    }
}

/// A withdrawal belongs to the transfer it names; a plain withdrawal to none.
impl Correlate<Withdrawn> for Transfer {
    fn correlation_id(event: &Withdrawn, _: &EventContext<'_>) -> Option<String> {
        event.transfer.clone()
    }
}

impl Correlate<Deposited> for Transfer {
    fn correlation_id(event: &Deposited, _: &EventContext<'_>) -> Option<String> {
        event.transfer.clone()
    }
}

/// The domain's rules, tested with aett's test kit: no store, the history given, one command.
#[cfg(test)]
mod tests {
    use aett::testing::{AggregateTest, SagaTest};

    use super::*;

    fn opened() -> AccountOpened {
        AccountOpened {
            owner: "Alice".into(),
            currency: "USD".into(),
        }
    }

    #[test]
    fn an_account_opened_by_the_first_release_is_a_dollar_account() {
        let stored = aett::EventMessage::from_raw(
            "bank.account_opened",
            serde_json::value::to_raw_value(&serde_json::json!({"owner": "Carol"})).unwrap(),
        );
        let test = AggregateTest::<Account>::new("carol")
            .given_message(&stored)
            .when(|account| account.open("Carol", "EUR"))
            .then_nothing_raised();
        assert_eq!(test.aggregate().currency, "USD");
        assert!(matches!(test.then_error(), BankError::AlreadyOpen(_)));
    }

    #[test]
    fn a_withdrawal_is_raised_when_the_balance_covers_it() {
        AggregateTest::<Account>::new("alice")
            .given(opened())
            .given(Deposited {
                amount: dollars(50),
                transfer: None,
            })
            .when(|account| account.withdraw(dollars(20), None))
            .then_raised(Withdrawn {
                amount: dollars(20),
                transfer: None,
            });
    }

    #[test]
    fn a_withdrawal_beyond_the_balance_is_refused() {
        let error = AggregateTest::<Account>::new("alice")
            .given(opened())
            .when(|account| account.withdraw(dollars(1), None))
            .then_nothing_raised()
            .then_error();
        assert!(matches!(
            error,
            BankError::InsufficientFunds { balance: 0, .. }
        ));
        AggregateTest::<Account>::new("bob")
            .when(|account| account.deposit(dollars(1), None))
            .then_error_message("account `bob` is not open");
    }

    #[test]
    fn a_transfer_withdraws_then_deposits() {
        let started = TransferStarted {
            transfer: "t-1".into(),
            from: "alice".into(),
            to: "bob".into(),
            amount: dollars(30),
        };
        SagaTest::<Transfer>::new("t-1")
            .when(started.clone())
            .then_dispatched(WithdrawFunds {
                account: "alice".into(),
                amount: dollars(30),
                transfer: "t-1".into(),
            });
        SagaTest::<Transfer>::new("t-1")
            .given(started)
            .when(Withdrawn {
                amount: dollars(30),
                transfer: Some("t-1".into()),
            })
            .then_dispatched(DepositFunds {
                account: "bob".into(),
                amount: dollars(30),
                transfer: "t-1".into(),
            });
    }
}
