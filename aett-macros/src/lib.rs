//! Procedural macros for aett. Use them through the `aett` crate, which re-exports them and
//! documents them; the generated code refers to `::aett`.
//!
//! Each macro parses its input into an intermediate representation (`ast`, `attr`),
//! validates it with spanned errors (`valid`), then generates code (`expand`). After a
//! validation error it still emits a fallback impl, so one mistake gives one error.

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput, Item};

/// Declares an event (or command) type with its topic, and how its older stored shapes and
/// names are read.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[aett::event(topic = "bank.deposited")]
/// #[derive(Serialize, Deserialize)]
/// struct Deposited { amount: u64 }
///
/// assert_eq!(<Deposited as aett::Event>::TOPIC, "bank.deposited");
/// ```
///
/// Implements `aett::Event` and registers the type in `aett::TopicMap::global()`.
/// Requirements: a struct or enum, not generic (a topic names exactly one type), with
/// `Serialize` and `Deserialize`. Arguments:
///
/// - `topic = "..."` (required): the name stored with every event of this type; it selects
///   the type when reading, so it is unique in the program and stable (renaming the type keeps
///   the topic). A topic two types declare is found when a repository or runner first uses it
///   (`RepositoryError::DuplicateTopic`, `RunnerError::DuplicateTopic`), and two events of one
///   aggregate, saga or projection sharing a topic or alias do not compile.
/// - `aliases("old", ...)`: topics the type was stored under before a rename, still read as it
///   (never written).
/// - `version = N`: the version of the current shape (default 1). Events are written with it
///   (the `aett.version` header, left out at version 1); a stored version newer than `N` is a
///   typed error (`RepositoryError::NewerEventVersion`, `ApplyError::NewerVersion`).
/// - `upcast(V = OldType, W = json(function), ...)`: how a body stored at version `V` is read.
///   `OldType` is a `Deserialize` type the stored JSON decodes into, converted with `From`/`Into`
///   into the next listed upcaster's type, or into this type after the last one.
///   `json(function)` takes a `fn(serde_json::Value) -> Result<serde_json::Value, E>` (`E:
///   Display`) that turns version `V`'s JSON into version `V + 1`'s, which is then read as
///   that version. A version without an upcaster of its own is read as the next version
///   (a change that only added a defaulted field needs none). JSON upcasters come before
///   typed ones. Upcasting runs wherever events are decoded (aggregate and saga loads,
///   projections, `EventMessage::decode_event`, the conflict detector); stored data is never
///   rewritten.
/// - `crate = path`: where aett is, for crates that re-export it (default `::aett`).
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// /// Version 1 held whole units.
/// #[derive(Deserialize)]
/// struct DepositedV1 { amount: u64 }
///
/// #[aett::event(topic = "bank.deposited", aliases("bank.credited"), version = 2, upcast(1 = DepositedV1))]
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Deposited { cents: u64 }
///
/// impl From<DepositedV1> for Deposited {
///     fn from(v1: DepositedV1) -> Self { Deposited { cents: v1.amount * 100 } }
/// }
///
/// // Stored by an older release, under the old name, without a version header (version 1).
/// let old = aett::EventMessage::from_raw(
///     "bank.credited",
///     serde_json::value::to_raw_value(&serde_json::json!({"amount": 3})).unwrap(),
/// );
/// assert_eq!(old.decode_event::<Deposited>().unwrap(), Some(Deposited { cents: 300 }));
/// ```
///
/// **Enums.** An enum with `topic` on the enum is one topic, its body serde's representation
/// of the enum. With `#[event(topic = "...", aliases(...))]` on every variant instead, each
/// variant is stored under its own topic with its content as the body, so the log, projections,
/// sagas and the conflict detector tell the variants apart, while the aggregate has one
/// `Apply` impl for the enum. Such an enum keeps serde's default (externally tagged)
/// representation and takes JSON upcasters only.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[aett::event]
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// enum Order {
///     #[event(topic = "shop.order.placed")]
///     Placed { total: u64 },
///     #[event(topic = "shop.order.cancelled", aliases("shop.order.voided"))]
///     Cancelled,
/// }
///
/// let message = aett::EventMessage::from_event(&Order::Placed { total: 5 }).unwrap();
/// assert_eq!((message.topic.as_str(), message.body.get()), ("shop.order.placed", r#"{"total":5}"#));
/// assert_eq!(message.decode_event::<Order>().unwrap(), Some(Order::Placed { total: 5 }));
/// ```
///
/// Commands a saga dispatches are declared the same way.
#[proc_macro_attribute]
pub fn event(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = parse_macro_input!(input as Item);
    let args = proc_macro2::TokenStream::from(args);
    let expanded = match ast::EventItem::from_syn(args, &item) {
        Err(error) => {
            let error = error.into_compile_error();
            let fallback = expand::event_fallback_of(&item);
            quote::quote!(#fallback #error)
        }
        Ok(event) => match valid::event(&event) {
            Ok(()) => expand::event(&event),
            Err(error) => {
                let error = error.into_compile_error();
                let fallback = expand::event_fallback(&event);
                quote::quote!(#fallback #error)
            }
        },
    };
    expanded.into()
}

/// Implements `aett::Aggregate` for a struct whose state is folded from its events.
///
/// ```
/// use aett::{Aggregate, AggregateState, Apply};
/// use serde::{Deserialize, Serialize};
///
/// mod events {
///     #[aett::event(topic = "counter.incremented")]
///     #[derive(serde::Serialize, serde::Deserialize)]
///     pub struct Incremented { pub by: u64 }
/// }
///
/// #[derive(Aggregate, Default, Serialize, Deserialize)]
/// #[aggregate(events(events::Incremented))] // events from other modules by path
/// struct Counter {
///     #[serde(skip)]
///     state: AggregateState,
///     total: u64,
/// }
///
/// impl Apply<events::Incremented> for Counter {
///     fn apply(&mut self, e: &events::Incremented) { self.total += e.by; }
/// }
///
/// let mut counter = Counter::create("c-1");
/// counter.raise(events::Incremented { by: 2 });
/// assert_eq!((counter.total, counter.version()), (2, 1));
/// ```
///
/// Requirements, each a compile error pointing at the offending token when unmet:
///
/// - a struct with named fields, not generic, implementing `Default` (a fresh aggregate is
///   `Default` with its id set);
/// - exactly one field of type `aett::AggregateState` (id, version, commit sequence,
///   uncommitted events);
/// - an `impl aett::Apply<E>` for every listed event `E`; listed events are `#[aett::event]`
///   types with distinct topics;
/// - a memento for snapshots: by default the aggregate's own serde form, so it derives
///   `Serialize` and `Deserialize` (the state field is never part of it; `#[serde(skip)]` keeps
///   even its `null` out); or `memento = M` with an `impl aett::Memento<M>`.
///
/// Arguments of `#[aggregate(...)]`:
///
/// - `events(A, B, ...)`: the events the aggregate applies, by path. `raise` accepts only
///   these (raising another is a compile error saying it is not listed), and loading
///   dispatches stored events to them by topic, each decoded straight from its stored JSON.
/// - `name = "..."`: the stream type every commit of the aggregate records, which readers of
///   the log filter on and loading checks (default: the type's name as written; give it
///   explicitly so that renaming the type keeps stored streams loadable).
/// - `memento = M`: snapshot through the type `M` instead of the aggregate's serde form.
/// - `crate = path`: where aett is, for crates that re-export it (default `::aett`).
#[proc_macro_derive(Aggregate, attributes(aggregate))]
pub fn derive_aggregate(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive(&input, ast::Kind::Aggregate)
}

/// Implements `aett::Saga` for a process manager that reacts to events and dispatches commands.
///
/// ```
/// use aett::{Saga, SagaState, Transition};
/// use serde::{Deserialize, Serialize};
///
/// #[aett::event(topic = "shop.order_placed")]
/// #[derive(Serialize, Deserialize)]
/// struct OrderPlaced { order: String }
///
/// #[aett::event(topic = "shop.command.ship")]
/// #[derive(Serialize, Deserialize)]
/// struct ShipOrder { order: String }
///
/// #[derive(Saga, Default)]
/// #[saga(events(OrderPlaced))]
/// struct Fulfilment { state: SagaState }
///
/// impl Transition<OrderPlaced> for Fulfilment {
///     fn transition(&mut self, e: &OrderPlaced) {
///         self.dispatch(ShipOrder { order: e.order.clone() });
///     }
/// }
///
/// let mut saga = Fulfilment::create("order-1");
/// saga.handle(OrderPlaced { order: "order-1".into() });
/// assert_eq!(saga.undispatched().len(), 1);
/// ```
///
/// Requirements: a struct with named fields, not generic, implementing `Default`, with exactly
/// one field of type `aett::SagaState`, and an `impl aett::Transition<E>` for every listed
/// event. A saga is its event history, so it needs no memento and no serde.
///
/// Arguments of `#[saga(...)]`: `events(A, B, ...)`, the events the saga handles (by path);
/// `name = "..."`, the stream type its commits record (default: the type's name as written);
/// `correlated`, to run it from the log with `aett::SagaRunner` (it then needs an
/// `impl aett::Correlate<E>` for every listed event, saying which instance the event goes to);
/// and `crate = path`, where aett is (default `::aett`).
#[proc_macro_derive(Saga, attributes(saga))]
pub fn derive_saga(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive(&input, ast::Kind::Saga)
}

/// Implements `aett::Projection` for a read model kept from the log.
///
/// ```
/// use aett::{EventContext, Project, Projection};
///
/// #[aett::event(topic = "shop.order_placed")]
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct OrderPlaced { order: String, total: u64 }
///
/// #[derive(Projection, Default)]
/// #[projection(name = "revenue", events(OrderPlaced))]
/// struct Revenue { total: u64 }
///
/// impl Project<OrderPlaced> for Revenue {
///     async fn project(&mut self, e: OrderPlaced, _: &EventContext<'_>) -> Result<(), aett::BoxError> {
///         self.total += e.total;
///         Ok(())
///     }
/// }
///
/// assert_eq!(<Revenue as Projection>::NAME, "revenue");
/// ```
///
/// Requirements, each a compile error pointing at the offending token when unmet: a type that
/// is not generic, and an `impl aett::Project<E>` for every listed event `E` (listed events are
/// `#[aett::event]` types with distinct topics).
///
/// Arguments of `#[projection(...)]`:
///
/// - `events(A, B, ...)`: the events the projection handles, by path. The runner decodes each
///   straight from its stored JSON into its type; events of other topics are never decoded.
/// - `name = "..."`: the key of the projection's checkpoint in the store (default: the type's
///   name as written; give it explicitly so that renaming the type keeps the checkpoint).
/// - `deletions`: deleted-stream notices go to an `impl aett::Project<aett::StreamDeleted>`
///   (without it they are passed over).
/// - `crate = path`: where aett is, for crates that re-export it (default `::aett`).
#[proc_macro_derive(Projection, attributes(projection))]
pub fn derive_projection(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let expanded = match ast::ProjectionItem::from_syn(&input) {
        Err(error) => {
            let error = error.into_compile_error();
            let fallback =
                expand::projection_fallback(&input.ident, &input.generics, &ast::default_crate());
            quote::quote!(#error #fallback)
        }
        Ok(projection) => match valid::projection(&projection) {
            Ok(()) => expand::projection(&projection),
            Err(error) => {
                let error = error.into_compile_error();
                let fallback = expand::projection_fallback(
                    projection.ident,
                    projection.generics,
                    &projection.krate(),
                );
                quote::quote!(#error #fallback)
            }
        },
    };
    expanded.into()
}

fn derive(input: &DeriveInput, kind: ast::Kind) -> TokenStream {
    let expanded = match ast::Domain::from_syn(input, kind) {
        Err(error) => {
            let error = error.into_compile_error();
            let fallback = expand::domain_fallback(
                kind,
                &input.ident,
                &input.generics,
                &ast::default_crate(),
                &[],
            );
            quote::quote!(#error #fallback)
        }
        Ok(domain) => match valid::domain(&domain) {
            Ok(()) => expand::domain(&domain),
            Err(error) => {
                let error = error.into_compile_error();
                let fallback = expand::domain_fallback(
                    kind,
                    domain.ident,
                    domain.generics,
                    &domain.krate(),
                    domain.events(),
                );
                quote::quote!(#error #fallback)
            }
        },
    };
    expanded.into()
}
