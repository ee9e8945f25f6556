//! Why a stored message could not be decoded or applied to an aggregate or saga.

/// A stored message that could not be decoded into its type, or that an aggregate's or
/// saga's generated dispatch could not apply.
///
/// Repositories turn it into a [`crate::RepositoryError`] naming tenant, stream and commit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The event was stored at a version of its shape newer than this program's type knows.
    #[error("the event of topic `{topic}` is stored at version {stored}, newer than version {known}, the newest this program knows")]
    NewerVersion {
        /// The stored topic.
        topic: String,
        /// The version stored.
        stored: u32,
        /// The type's [`crate::Event::VERSION`].
        known: u32,
    },
    /// The event's version header is not a version.
    #[error("the event of topic `{topic}` has an invalid version: {reason}")]
    InvalidVersion {
        /// The stored topic.
        topic: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ApplyError {
    /// The topic of the stored event.
    pub fn topic(&self) -> &str {
        match self {
            Self::UnknownTopic { topic, .. }
            | Self::Decode { topic, .. }
            | Self::NewerVersion { topic, .. }
            | Self::InvalidVersion { topic, .. } => topic,
        }
    }
}
