//! Projections: read models kept from the log, with a typed handler per event.

use std::any::Any;
use std::future::Future;

use futures::future::BoxFuture;

use crate::error::BoxError;
use crate::model::StreamDeleted;
use crate::read::EventContext;

/// How a projection handles an event of type `E` (or, with `#[projection(deletions)]`, a
/// [`StreamDeleted`] notice). Write one per event the projection lists; the derive dispatches
/// the log's events to them by topic.
///
/// Implement it with an `async fn`:
///
/// ```
/// # #[aett::event(topic = "shop.order_placed")]
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct OrderPlaced { total: u64 }
/// #[derive(aett::Projection, Default)]
/// #[projection(name = "revenue", events(OrderPlaced))]
/// struct Revenue { total: u64 }
///
/// impl aett::Project<OrderPlaced> for Revenue {
///     async fn project(&mut self, e: OrderPlaced, _: &aett::EventContext<'_>) -> Result<(), aett::BoxError> {
///         self.total += e.total;
///         Ok(())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` lists `{E}` as an event but does not implement `Project<{E}>`",
    label = "no `Project<{E}>` implementation",
    note = "add `impl aett::Project<{E}> for {Self} {{ async fn project(&mut self, event: {E}, context: &aett::EventContext<'_>) -> Result<(), aett::BoxError> {{ ... }} }}`"
)]
pub trait Project<E>: Send {
    /// Handles `event`. An error stops the runner, and the stored checkpoint stays before the
    /// commit that holds this event.
    fn project(
        &mut self,
        event: E,
        context: &EventContext<'_>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// A projection: a read model kept from the events of the log it lists. Implement it with
/// `#[derive(Projection)]` and `#[projection(events(...))]`, and one [`Project`] impl per
/// listed event; run it with a [`crate::ProjectionRunner`].
///
/// Events it does not list are skipped without being decoded.
pub trait Projection: Send + 'static {
    /// The projection's name: the key of its checkpoint and lease in the store.
    /// `#[projection(name = "...")]` sets it (default: the type's name as written).
    const NAME: &'static str;

    /// The topics and aliases of the listed events, in list order.
    const TOPICS: &'static [&'static str];

    /// Whether the projection handles deleted-stream notices (`#[projection(deletions)]`).
    const HANDLES_DELETIONS: bool;

    /// Decodes the body of an event of a listed topic stored at `version` straight from the
    /// stored JSON into its type, through its upcasters (nothing read for a topic the
    /// projection does not list).
    #[doc(hidden)]
    fn decode_body<'de, D: serde::Deserializer<'de>>(
        topic: &str,
        version: u32,
        body: D,
    ) -> Result<crate::__private::Dispatch<Box<dyn Any + Send>>, D::Error>;

    /// Runs the handler of an event [`Projection::decode_body`] decoded.
    #[doc(hidden)]
    fn project_decoded<'a>(
        &'a mut self,
        topic: &'a str,
        event: Box<dyn Any + Send>,
        context: &'a EventContext<'a>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send + 'a;

    /// Hands a deleted-stream notice to `Project<StreamDeleted>` when the projection handles
    /// deletions; `None` otherwise.
    #[doc(hidden)]
    fn project_deletion<'a>(
        &'a mut self,
        deleted: &'a StreamDeleted,
        context: &'a EventContext<'a>,
    ) -> Option<BoxFuture<'a, Result<(), BoxError>>>;
}
