//! Store URLs: pick a backend by configuration, not by code.

use std::sync::Arc;

use url::Url;

use crate::backends::memory::InMemoryStore;
use crate::conflict::ConflictDetector;
use crate::error::StoreError;
use crate::store::EventStore;

/// Opens the store a URL names, initialises it, and returns it in every role.
///
/// | URL | backend | feature |
/// |---|---|---|
/// | `memory://` | a new, empty [`InMemoryStore`] | always on |
/// | `sqlite://PATH` (`sqlite://./bank.db`, `sqlite:///abs/path.db`; `%20` etc. decode) | `SqliteStore` on that file | `sqlite` (default) |
/// | `postgres://user:password@host:port/database` (`?sslmode=require` for TLS, `?schema=NAME` for the tables' schema) | `PostgresStore` | `postgres` (TLS: `postgres-tls`) |
/// | `mongodb://host:port/database` or `mongodb+srv://…` (the driver's own options, and `?prefix=NAME_` before every collection name) | `MongoStore` | `mongodb` |
/// | `dynamodb://TABLE` (`?region=eu-west-1`, `?endpoint=http://localhost:8000`; credentials from the AWS SDK's standard chain) | `DynamoStore` | `dynamodb` |
/// | `s3://BUCKET/PREFIX` (`?region=eu-west-1`, `?endpoint=http://localhost:9000`, which also turns on path-style addressing; credentials from the AWS SDK's standard chain) | `S3Store` | `s3` |
///
/// A scheme whose backend's feature is off is [`StoreError::FeatureDisabled`], naming the
/// feature to enable. `sqlite://:memory:` is refused: each SQLite connection would see its own
/// in-memory database; `memory://` is the store in memory.
///
/// The store coerces to any one role: `let log: Arc<dyn aett::CommitLog> = store.clone();`
/// gives a reader that cannot purge or drop.
pub async fn connect(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    connect_with(url, Arc::default()).await
}

/// [`connect`], with the conflict detector the store consults when a commit loses a race.
pub async fn connect_with(
    url: &str,
    detector: Arc<ConflictDetector>,
) -> Result<Arc<dyn EventStore>, StoreError> {
    // A file path is not a URL authority (`:memory:` would read as a port): sqlite:// takes the
    // rest of the URL as a percent-encoded path.
    if let Some(rest) = url.strip_prefix("sqlite://") {
        return connect_sqlite(url, rest, detector).await;
    }
    // A MongoDB URL may list several hosts (`mongodb://a:27017,b:27017/db`), which is not a
    // URL authority: the driver parses it.
    if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
        return connect_mongodb(url, detector).await;
    }
    let parsed = Url::parse(url).map_err(|e| {
        StoreError::Configuration(format!("`{url}` is not a store URL (SCHEME://…): {e}"))
    })?;
    match parsed.scheme() {
        "memory" => {
            if parsed.has_host() || !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
                return Err(StoreError::Configuration(format!(
                    "`{url}`: a memory:// URL takes nothing after the scheme"
                )));
            }
            Ok(Arc::new(InMemoryStore::with_conflict_detector(detector)))
        }
        "postgres" | "postgresql" => connect_postgres(url, &parsed, detector).await,
        "dynamodb" => connect_dynamodb(url, detector).await,
        "s3" => connect_s3(url, detector).await,
        other => Err(StoreError::Configuration(format!(
            "`{url}`: unknown store URL scheme `{other}` (known: memory, sqlite, postgres, mongodb, dynamodb, s3)"
        ))),
    }
}

/// The file path of a `sqlite://` URL: everything after `sqlite://`, percent-decoded.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
fn sqlite_path(url: &str, rest: &str) -> Result<std::path::PathBuf, StoreError> {
    if rest.contains(['?', '#']) {
        return Err(StoreError::Configuration(format!(
            "`{url}`: a sqlite:// URL takes a file path only, no `?` or `#` parts (percent-encode them as %3F and %23)"
        )));
    }
    let path = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .map_err(|e| StoreError::Configuration(format!("`{url}`: the path is not UTF-8: {e}")))?;
    if path.is_empty() {
        return Err(StoreError::Configuration(format!(
            "`{url}`: a sqlite:// URL needs a file path"
        )));
    }
    Ok(path.into_owned().into())
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(
    url: &str,
    rest: &str,
    detector: Arc<ConflictDetector>,
) -> Result<Arc<dyn EventStore>, StoreError> {
    use crate::store::PersistenceManagement;
    let path = sqlite_path(url, rest)?;
    let config = crate::SqliteConfig::new(path).conflict_detector(detector);
    let store = crate::SqliteStore::with_config(config)?;
    store.initialize().await?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "sqlite"))]
async fn connect_sqlite(
    _url: &str,
    _rest: &str,
    _detector: Arc<ConflictDetector>,
) -> Result<Arc<dyn EventStore>, StoreError> {
    Err(StoreError::FeatureDisabled {
        scheme: "sqlite".to_owned(),
        feature: "sqlite",
    })
}

#[cfg(feature = "postgres")]
async fn connect_postgres(
    _url: &str,
    parsed: &Url,
    detector: Arc<ConflictDetector>,
) -> Result<Arc<dyn EventStore>, StoreError> {
    use crate::store::PersistenceManagement;
    let (url, schema) = split_schema(parsed);
    let mut config = crate::PostgresConfig::new(url).conflict_detector(detector);
    if let Some(schema) = schema {
        config = config.schema(schema);
    }
    let store = crate::PostgresStore::connect(config).await?;
    store.initialize().await?;
    Ok(Arc::new(store))
}

#[cfg(feature = "dynamodb")]
async fn connect_dynamodb(
    url: &str,
    detector: Arc<ConflictDetector>,
) -> Result<Arc<dyn EventStore>, StoreError> {
    use crate::store::PersistenceManagement;
    let config = crate::DynamoConfig::from_url(url)?.conflict_detector(detector);
    let store = crate::DynamoStore::connect(config).await?;
    store.initialize().await?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "dynamodb"))]
async fn connect_dynamodb(
    _url: &str,
    _detector: Arc<ConflictDetector>,
) -> Result<Arc<dyn EventStore>, StoreError> {
    Err(StoreError::FeatureDisabled {
        scheme: "dynamodb".to_owned(),
        feature: "dynamodb",
    })
}

#[cfg(feature = "s3")]
async fn connect_s3(
    url: &str,
    detector: Arc<ConflictDetector>,
) -> Result<Arc<dyn EventStore>, StoreError> {
    use crate::store::PersistenceManagement;
    let config = crate::S3Config::from_url(url)?.conflict_detector(detector);
    let store = crate::S3Store::connect(config).await?;
    store.initialize().await?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "s3"))]
async fn connect_s3(
    _url: &str,
    _detector: Arc<ConflictDetector>,
) -> Result<Arc<dyn EventStore>, StoreError> {
    Err(StoreError::FeatureDisabled {
        scheme: "s3".to_owned(),
        feature: "s3",
    })
}

#[cfg(feature = "mongodb")]
async fn connect_mongodb(
    url: &str,
    detector: Arc<ConflictDetector>,
) -> Result<Arc<dyn EventStore>, StoreError> {
    use crate::store::PersistenceManagement;
    let (url, prefix) = split_prefix(url);
    let mut config = crate::MongoConfig::new(url).conflict_detector(detector);
    if let Some(prefix) = prefix {
        config = config.collection_prefix(prefix);
    }
    let store = crate::MongoStore::connect(config).await?;
    store.initialize().await?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "mongodb"))]
async fn connect_mongodb(
    url: &str,
    _detector: Arc<ConflictDetector>,
) -> Result<Arc<dyn EventStore>, StoreError> {
    Err(StoreError::FeatureDisabled {
        scheme: url.split("://").next().unwrap_or("mongodb").to_owned(),
        feature: "mongodb",
    })
}

/// Takes aett's own `prefix=NAME` option out of a MongoDB URL; the rest goes to the driver.
#[cfg_attr(not(feature = "mongodb"), allow(dead_code))]
fn split_prefix(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut prefix = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("prefix=") {
            Some(value) => {
                let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                prefix = Some(value.into_owned());
                false
            }
            None => true,
        })
        .collect();
    if rest.is_empty() {
        (base.to_owned(), prefix)
    } else {
        (format!("{base}?{}", rest.join("&")), prefix)
    }
}

/// Takes aett's own `schema=NAME` parameter out of a PostgreSQL URL; the rest goes to the
/// driver, whose own parser reads it (`sslmode`, `connect_timeout`, …).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn split_schema(parsed: &Url) -> (String, Option<String>) {
    split_parameter(parsed, "schema")
}

/// Takes aett's own parameter `name` out of a URL; the rest goes to the driver.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn split_parameter(parsed: &Url, name: &str) -> (String, Option<String>) {
    let mut found = None;
    let mut rest = Vec::new();
    for (key, value) in parsed.query_pairs() {
        if key == name {
            found = Some(value.into_owned());
        } else {
            rest.push((key.into_owned(), value.into_owned()));
        }
    }
    let mut url = parsed.clone();
    if rest.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(rest);
    }
    (url.into(), found)
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(
    _url: &str,
    parsed: &Url,
    _detector: Arc<ConflictDetector>,
) -> Result<Arc<dyn EventStore>, StoreError> {
    Err(StoreError::FeatureDisabled {
        scheme: parsed.scheme().to_owned(),
        feature: "postgres",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CommitLog;
    use futures::TryStreamExt;

    #[tokio::test]
    async fn memory_urls_give_fresh_stores() {
        let store = connect("memory://").await.unwrap();
        store.initialize().await.unwrap();
        let log: Arc<dyn CommitLog> = store.clone();
        let commits: Vec<_> = log.get_from(0).try_collect().await.unwrap();
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
                other => panic!("{url}: {:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn mongodb_urls_give_their_prefix_and_keep_the_rest() {
        assert_eq!(
            split_prefix("mongodb://a:1,b:2/bank?replicaSet=rs&prefix=ledger_&w=majority"),
            (
                "mongodb://a:1,b:2/bank?replicaSet=rs&w=majority".to_owned(),
                Some("ledger_".to_owned())
            )
        );
        assert_eq!(
            split_prefix("mongodb+srv://cluster.example.com/bank?prefix=x%24"),
            (
                "mongodb+srv://cluster.example.com/bank".to_owned(),
                Some("x$".to_owned())
            )
        );
        assert_eq!(
            split_prefix("mongodb://h/db"),
            ("mongodb://h/db".to_owned(), None)
        );
    }

    #[test]
    fn sqlite_paths_are_percent_decoded() {
        let path = |url: &str| sqlite_path(url, url.strip_prefix("sqlite://").unwrap());
        assert_eq!(
            path("sqlite://my%20db.db").unwrap(),
            std::path::PathBuf::from("my db.db")
        );
        assert_eq!(
            path("sqlite://./bank.db").unwrap(),
            std::path::PathBuf::from("./bank.db")
        );
        assert_eq!(
            path("sqlite:///abs/p%C3%A4th.db").unwrap(),
            std::path::PathBuf::from("/abs/päth.db")
        );
        assert!(path("sqlite://").is_err());
        assert!(path("sqlite://a.db?mode=memory").is_err());
    }

    #[test]
    fn the_schema_parameter_is_aetts_and_the_rest_goes_to_the_driver() {
        let split = |url: &str| split_schema(&Url::parse(url).unwrap());
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
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_urls_open_and_initialise_the_file() {
        let dir = std::env::temp_dir().join(format!("aett-connect-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store db.db");
        let url = format!("sqlite://{}", path.display()).replace(' ', "%20");
        let store = connect(&url).await.unwrap();
        let commits: Vec<_> = store.get_from(0).try_collect().await.unwrap();
        assert!(commits.is_empty() && path.exists());
        assert!(matches!(
            connect("sqlite://").await,
            Err(StoreError::Configuration(_))
        ));
        let unreachable = connect("sqlite:///no/such/dir/store.db")
            .await
            .map(|_| ())
            .expect_err("cannot open");
        assert!(
            matches!(
                unreachable,
                StoreError::Storage {
                    operation: crate::Operation::Open,
                    ..
                }
            ),
            "{unreachable}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_in_memory_urls_are_refused_with_a_pointer_to_memory() {
        for url in ["sqlite://:memory:", "sqlite://file::memory:"] {
            match connect(url).await {
                Err(StoreError::Configuration(message)) => {
                    assert!(message.contains("memory://"), "{message}")
                }
                other => panic!("{url}: {:?}", other.map(|_| ())),
            }
        }
    }
}
