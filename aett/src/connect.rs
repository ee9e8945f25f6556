//! Store URLs: pick a backend by configuration, not by code.

use std::sync::Arc;

use crate::backends::memory::InMemoryStore;
use crate::conflict::ConflictDetector;
use crate::error::StoreError;
use crate::store::Stores;

/// Opens the store a URL names, initialises it, and returns its three roles.
///
/// | URL | backend | feature |
/// |---|---|---|
/// | `memory://` | a new, empty [`InMemoryStore`] | always on |
/// | `sqlite://PATH` (`sqlite://./bank.db`, `sqlite:///abs/path.db`) | `SqliteStore` on that file | `sqlite` (default) |
/// | `postgres://user:password@host:port/database` (`?sslmode=require` for TLS, `?schema=NAME` for the tables' schema) | `PostgresStore` | `postgres` (TLS: `postgres-tls`) |
///
/// A scheme whose backend's feature is off is [`StoreError::FeatureDisabled`], naming the
/// feature to enable.
pub async fn connect(url: &str) -> Result<Stores, StoreError> {
    connect_with(url, Arc::default()).await
}

/// [`connect`], with the conflict detector the store consults when a commit loses a race.
pub async fn connect_with(
    url: &str,
    detector: Arc<ConflictDetector>,
) -> Result<Stores, StoreError> {
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
            Ok(Stores::from_backend(Arc::new(
                InMemoryStore::with_conflict_detector(detector),
            )))
        }
        "sqlite" => connect_sqlite(url, rest, detector).await,
        "postgres" | "postgresql" => connect_postgres(url, scheme, detector).await,
        other => Err(StoreError::Configuration(format!(
            "`{url}`: unknown store URL scheme `{other}` (known: memory, sqlite, postgres)"
        ))),
    }
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(
    url: &str,
    path: &str,
    detector: Arc<ConflictDetector>,
) -> Result<Stores, StoreError> {
    use crate::store::PersistenceManagement;
    if path.is_empty() {
        return Err(StoreError::Configuration(format!(
            "`{url}`: a sqlite:// URL needs a file path"
        )));
    }
    let config = crate::SqliteConfig::new(path).conflict_detector(detector);
    let store = Arc::new(crate::SqliteStore::with_config(config)?);
    store.initialize().await?;
    Ok(Stores::from_backend(store))
}

#[cfg(not(feature = "sqlite"))]
async fn connect_sqlite(
    _url: &str,
    _path: &str,
    _detector: Arc<ConflictDetector>,
) -> Result<Stores, StoreError> {
    Err(StoreError::FeatureDisabled {
        scheme: "sqlite".to_owned(),
        feature: "sqlite",
    })
}

#[cfg(feature = "postgres")]
async fn connect_postgres(
    url: &str,
    _scheme: &str,
    detector: Arc<ConflictDetector>,
) -> Result<Stores, StoreError> {
    use crate::store::PersistenceManagement;
    let (url, schema) = split_schema(url);
    let mut config = crate::PostgresConfig::new(url).conflict_detector(detector);
    if let Some(schema) = schema {
        config = config.schema(schema);
    }
    let store = Arc::new(crate::PostgresStore::connect(config).await?);
    store.initialize().await?;
    Ok(Stores::from_backend(store))
}

/// Takes aett's own `schema=NAME` parameter out of a PostgreSQL URL; the rest goes to the driver.
#[cfg(feature = "postgres")]
fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("schema=") {
            Some(name) => schema = Some(name.to_owned()),
            None if !pair.is_empty() => rest.push(pair),
            None => {}
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, schema)
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(
    _url: &str,
    scheme: &str,
    _detector: Arc<ConflictDetector>,
) -> Result<Stores, StoreError> {
    Err(StoreError::FeatureDisabled {
        scheme: scheme.to_owned(),
        feature: "postgres",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    #[tokio::test]
    async fn memory_urls_give_fresh_stores() {
        let stores = connect("memory://").await.unwrap();
        stores.management.initialize().await.unwrap();
        let commits: Vec<_> = stores.management.get_from(0).try_collect().await.unwrap();
        assert!(commits.is_empty());
        assert!(matches!(
            connect("memory://x").await,
            Err(StoreError::Configuration(_))
        ));
    }

    #[tokio::test]
    async fn bad_and_unknown_urls_are_configuration_errors() {
        for url in ["", "bank.db", "mysql://localhost/db"] {
            match connect(url).await {
                Err(StoreError::Configuration(message)) => {
                    assert!(message.contains(url), "{message}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_schema_parameter_is_aetts_and_the_rest_goes_to_the_driver() {
        let split = |url: &str| split_schema(url);
        assert_eq!(
            split("postgres://h/db"),
            ("postgres://h/db".to_owned(), None)
        );
        assert_eq!(
            split("postgres://h/db?schema=bank"),
            ("postgres://h/db".to_owned(), Some("bank".to_owned()))
        );
        assert_eq!(
            split("postgres://h/db?sslmode=require&schema=bank&connect_timeout=5"),
            (
                "postgres://h/db?sslmode=require&connect_timeout=5".to_owned(),
                Some("bank".to_owned())
            )
        );
    }

    #[cfg(not(feature = "postgres"))]
    #[tokio::test]
    async fn a_backend_whose_feature_is_off_names_the_feature() {
        match connect("postgres://localhost/db").await {
            Err(
                error @ StoreError::FeatureDisabled {
                    feature: "postgres",
                    ..
                },
            ) => {
                assert!(
                    error.to_string().contains("`postgres` cargo feature"),
                    "{error}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_urls_open_and_initialise_the_file() {
        let dir = std::env::temp_dir().join(format!("aett-connect-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.db");
        let stores = connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let commits: Vec<_> = stores.management.get_from(0).try_collect().await.unwrap();
        assert!(commits.is_empty() && path.exists());
        assert!(matches!(
            connect("sqlite://").await,
            Err(StoreError::Configuration(_))
        ));
        let unreachable = connect("sqlite:///no/such/dir/store.db")
            .await
            .expect_err("cannot open");
        assert!(
            matches!(
                unreachable,
                StoreError::Storage {
                    operation: "open",
                    ..
                }
            ),
            "{unreachable}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
