//! Opening the stores a command names.

use std::path::Path;
use std::sync::Arc;

use aett::{EventStore, StoreError};

use crate::error::CliError;
use crate::urls;

/// An open store and how to name it in messages.
pub struct Store {
    /// The store in every role.
    pub store: Arc<dyn EventStore>,
    /// Its URL without a password.
    pub shown: String,
}

impl Store {
    /// `source` as a failure of this store.
    pub fn error(&self, source: StoreError) -> CliError {
        CliError::Store {
            url: self.shown.clone(),
            source: Box::new(source),
        }
    }
}

/// Opens a store to read. A `sqlite://` URL must name an existing file: reading a mistyped path
/// would otherwise create an empty store there.
pub async fn existing(url: &str) -> Result<Store, CliError> {
    if let Some(path) = urls::sqlite_path(url) {
        if !Path::new(&path).is_file() {
            return Err(CliError::NoSuchFile {
                url: urls::redact(url),
                path,
            });
        }
    }
    target(url).await
}

/// Opens a store to write, creating its tables (or file, bucket) if it has none yet.
pub async fn target(url: &str) -> Result<Store, CliError> {
    let store = aett::connect(url)
        .await
        .map_err(|e| CliError::store(url, e))?;
    Ok(Store {
        store,
        shown: urls::redact(url),
    })
}
