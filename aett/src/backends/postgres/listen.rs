//! Wake-ups for followers of the log across processes: `LISTEN` on a connection of its own.
//! Commits made through a store raise its in-process signal; one task per store turns those
//! signals into `NOTIFY`s, outside the commits' own transactions (a `NOTIFY` inside a commit
//! would hold PostgreSQL's notification lock through the commit's WAL flush and serialise
//! concurrent writers), coalescing a burst of commits into one notification.

use futures::channel::mpsc;
use futures::StreamExt;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Socket};

use super::DriverError;
use crate::error::{Operation, Scope, StoreError};

/// A notification (or the listening connection's failure), as followers receive it.
pub(super) type Received = mpsc::UnboundedReceiver<Result<(), StoreError>>;

/// Opens a connection that listens on `channel`; its messages are driven by a task of their
/// own, which ends when the returned client and receiver are dropped.
pub(super) async fn listen<T>(
    config: &tokio_postgres::Config,
    tls: T,
    channel: &str,
) -> Result<(Client, Received), StoreError>
where
    T: MakeTlsConnect<Socket> + Send,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let fail = |e: tokio_postgres::Error| {
        StoreError::storage(Operation::Listen, Scope::Store, DriverError::from(e))
    };
    let (client, mut connection) = config.connect(tls).await.map_err(fail)?;
    let (sender, received) = mpsc::unbounded();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            let wake = match message {
                Ok(AsyncMessage::Notification(_)) => Ok(()),
                Ok(_) => continue,
                Err(error) => Err(fail(error)),
            };
            let failed = wake.is_err();
            if sender.unbounded_send(wake).is_err() || failed {
                break;
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await
        .map_err(fail)?;
    Ok((client, received))
}
