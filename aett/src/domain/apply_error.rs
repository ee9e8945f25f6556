//! Why a stored message could not be applied to an aggregate or saga.

/// A stored message that an aggregate's or saga's generated dispatch could not apply.
///
/// Repositories turn it into a [`crate::RepositoryError`] naming tenant, stream and commit.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The topic is not in the type's `events(...)` list.
    #[error("no event of topic `{topic}` is declared by `{target}`")]
    UnknownTopic {
        /// The stored topic.
        topic: String,
        /// The aggregate or saga type.
        target: &'static str,
    },
    /// The body did not decode into the event type of its topic.
    #[error("the body of an event of topic `{topic}` does not decode: {source}")]
    Decode {
        /// The stored topic.
        topic: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}
