//! Reaching the PostgreSQL server the tests run against.

/// The variable that holds the test server's connection URL.
pub const URL_VARIABLE: &str = "AETT_POSTGRES_URL";

/// The variable that holds the test server's CA certificate (PEM), for the TLS test.
pub const CA_VARIABLE: &str = "AETT_POSTGRES_CA_FILE";

/// The test server's URL. Panics, saying how to provide one, when it is not set: a PostgreSQL
/// test never passes without a server.
pub fn url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{URL_VARIABLE} is not set, so there is no PostgreSQL server to test against. \
             Run scripts/test-all.sh, which starts a throwaway server (scripts/postgres-test-server.sh), \
             or point {URL_VARIABLE} at one: {URL_VARIABLE}=postgres://USER:PASSWORD@127.0.0.1:5432/DATABASE"
        )
    })
}

/// A schema name no other test uses.
pub fn unique_schema() -> String {
    format!("aett_test_{}", uuid::Uuid::new_v4().simple())
}

/// A plain connection for checks and damage the store's API does not offer.
pub async fn raw_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VARIABLE}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
