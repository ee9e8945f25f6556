//! Reaching the MongoDB-compatible server the tests run against.

/// The variable that holds the test server's connection URL.
pub const URL_VARIABLE: &str = "AETT_MONGODB_URL";

/// The test server's URL. Panics, saying how to provide one, when it is not set: a MongoDB
/// test never passes without a server.
pub fn url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{URL_VARIABLE} is not set, so there is no MongoDB server to test against. \
             Run scripts/test-all.sh, which starts a throwaway server (scripts/mongodb-test-server.sh), \
             or point {URL_VARIABLE} at a replica set of your own: \
             {URL_VARIABLE}=mongodb://127.0.0.1:27017/?directConnection=true"
        )
    })
}

/// The test server's URL with `database` as its path (the database `aett::connect` opens).
pub fn url_with_database(database: &str) -> String {
    let url = url();
    let (base, options) = url.split_once('?').unwrap_or((&url, ""));
    let (scheme, rest) = base.split_once("://").expect("a mongodb:// URL");
    let hosts = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{hosts}/{database}?{options}")
}

/// The test server's `host:port`, for a test that stands between it and the store. Panics for
/// a URL that names several hosts.
pub fn single_host() -> String {
    url()
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?']).next())
        .filter(|hosts| !hosts.contains(','))
        .expect("this test needs a single-host AETT_MONGODB_URL")
        .to_owned()
}

/// A database name no other test uses.
pub fn unique_database() -> String {
    format!("aett_test_{}", uuid::Uuid::new_v4().simple())
}

/// A plain client for checks and damage the store's API does not offer.
pub async fn raw_client() -> mongodb::Client {
    mongodb::Client::with_uri_str(url())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VARIABLE}: {e}"))
}
