//! Store URLs: pick a backend by configuration, not by code.

use std::sync::Arc;

use crate::backends::memory::InMemoryStore;
use crate::error::StoreError;
use crate::store::Stores;

/// Opens the store a URL names, initialises it, and returns its three roles.
///
/// | URL | backend | feature |
/// |---|---|---|
/// | `memory://` | a new, empty [`InMemoryStore`] | always on |
/// | `sqlite://PATH` (`sqlite://./bank.db`, `sqlite:///abs/path.db`) | [`crate::SqliteStore`] on that file | `sqlite` (default) |
///
/// A scheme whose backend's feature is off is [`StoreError::FeatureDisabled`], naming the
/// feature to enable.
pub async fn connect(url: &str) -> Result<Stores, StoreError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        StoreError::Configuration(format!("`{url}` is not a store URL: expected SCHEME://…"))
    })?;
    match scheme {
        "memory" => {
            if !rest.is_empty() {
                return Err(StoreError::Configuration(format!(
                    "`{url}`: a memory:// URL takes nothing after the scheme"
                )));
            }
            Ok(Stores::from_backend(Arc::new(InMemoryStore::new())))
        }
        "sqlite" => connect_sqlite(url, rest).await,
        "postgres" | "postgresql" => Err(StoreError::FeatureDisabled {
            scheme: scheme.to_owned(),
            feature: "postgres",
        }),
        other => Err(StoreError::Configuration(format!(
            "`{url}`: unknown store URL scheme `{other}` (known: memory, sqlite, postgres)"
        ))),
    }
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(url: &str, path: &str) -> Result<Stores, StoreError> {
    use crate::store::PersistenceManagement;
    if path.is_empty() {
        return Err(StoreError::Configuration(format!(
            "`{url}`: a sqlite:// URL needs a file path"
        )));
    }
    let store = Arc::new(crate::SqliteStore::open(path)?);
    store.initialize().await?;
    Ok(Stores::from_backend(store))
}

#[cfg(not(feature = "sqlite"))]
async fn connect_sqlite(_url: &str, _path: &str) -> Result<Stores, StoreError> {
    Err(StoreError::FeatureDisabled {
        scheme: "sqlite".to_owned(),
        feature: "sqlite",
    })
}
