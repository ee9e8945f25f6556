//! The bank's read model: a ledger of balances per account, kept by a projection from the log.
//!
//! On SQLite and PostgreSQL the ledger is a table in the store's own database, on MongoDB a
//! collection, written in the transaction that advances the projection's checkpoint (exactly
//! once): a second run of the example resumes where the first stopped, and never posts an entry
//! twice. On S3, which has no transactions, the projection runs at least once and the ledger
//! is an object per account beside the store, which remembers the last revision it posted, so
//! an event handled again is not posted twice. On the in-memory store it lives in the
//! projection itself.

use std::collections::BTreeMap;

use aett::{BoxError, EventContext, Project, Projection};

use crate::domain::{Deposited, Withdrawn};

/// The SQL table, the same on both databases.
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS bank_ledger (
    account TEXT PRIMARY KEY,
    balance BIGINT NOT NULL,
    entries BIGINT NOT NULL
)";

const POST: &str = "INSERT INTO bank_ledger (account, balance, entries) VALUES ($1, $2, 1)
    ON CONFLICT (account) DO UPDATE
    SET balance = bank_ledger.balance + excluded.balance, entries = bank_ledger.entries + 1";

/// Balances per account, from deposits and withdrawals.
#[derive(Debug, Default, Projection)]
#[projection(name = "bank.ledger", events(Deposited, Withdrawn))]
pub struct Ledger {
    /// Entries posted by this run.
    pub posted: u64,
    /// The ledger itself, when the store has no database to keep it in.
    pub in_memory: BTreeMap<String, i64>,
    /// The ledger's objects, on an S3 store.
    #[cfg(feature = "s3")]
    pub s3: Option<s3::S3Ledger>,
}

impl Project<Deposited> for Ledger {
    async fn project(
        &mut self,
        event: Deposited,
        context: &EventContext<'_>,
    ) -> Result<(), BoxError> {
        self.post(context, i64::try_from(event.amount)?).await
    }
}

impl Project<Withdrawn> for Ledger {
    async fn project(
        &mut self,
        event: Withdrawn,
        context: &EventContext<'_>,
    ) -> Result<(), BoxError> {
        self.post(context, -i64::try_from(event.amount)?).await
    }
}

impl Ledger {
    /// Posts `delta` to the account whose stream the event is on.
    async fn post(&mut self, context: &EventContext<'_>, delta: i64) -> Result<(), BoxError> {
        self.posted += 1;
        let account = context.stream_id;
        if let Some(tx) = context.transaction::<aett::backends::sqlite::SqliteTransaction>() {
            tx.with(|db| {
                db.execute_batch(CREATE_TABLE)?;
                db.execute(POST, rusqlite::params![account, delta])
            })?;
            return Ok(());
        }
        #[cfg(feature = "postgres")]
        if let Some(tx) = context.transaction::<aett::backends::postgres::PostgresTransaction>() {
            tx.client().batch_execute(CREATE_TABLE).await?;
            tx.client().execute(POST, &[&account, &delta]).await?;
            return Ok(());
        }
        #[cfg(feature = "mongodb")]
        if let Some(tx) = context.transaction::<aett::backends::mongodb::MongoTransaction>() {
            use mongodb::bson::{doc, Document};
            let mut session = tx.session().await;
            tx.database()
                .collection::<Document>(COLLECTION)
                .update_one(
                    doc! {"_id": account},
                    doc! {"$inc": {"balance": delta, "entries": 1_i64}},
                )
                .upsert(true)
                .session(&mut *session)
                .await?;
            return Ok(());
        }
        #[cfg(feature = "dynamodb")]
        if let Some(tx) = context.transaction::<aett::DynamoTransaction>() {
            use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
            let table = dynamodb::table_for(tx.table());
            dynamodb::create_table(tx.client(), &table).await?;
            let update = Update::builder()
                .table_name(table)
                .key("account", AttributeValue::S(account.to_owned()))
                .update_expression("ADD #balance :delta, #entries :one")
                .expression_attribute_names("#balance", "balance")
                .expression_attribute_names("#entries", "entries")
                .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
                .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
                .build()?;
            tx.push(TransactWriteItem::builder().update(update).build());
            return Ok(());
        }
        #[cfg(feature = "s3")]
        if let Some(ledger) = &self.s3 {
            return ledger.post(account, context.revision, delta).await;
        }
        *self.in_memory.entry(account.to_owned()).or_default() += delta;
        Ok(())
    }
}

/// The S3 ledger: an object per account beside the store's prefix, posted at least once and
/// applied once (each object remembers the revision of the last event it took in).
#[cfg(feature = "s3")]
pub mod s3 {
    use std::collections::BTreeMap;

    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::Client;
    use serde::{Deserialize, Serialize};

    use super::BoxError;

    /// One account's line of the ledger.
    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Line {
        balance: i64,
        entries: i64,
        /// The revision of the account's last event posted.
        revision: u64,
    }

    /// Where the ledger's objects are.
    #[derive(Debug)]
    pub struct S3Ledger {
        client: Client,
        bucket: String,
        prefix: String,
    }

    impl S3Ledger {
        /// The ledger beside the store an `s3://` URL names: under `PREFIX-ledger/`.
        pub async fn open(url: &str) -> Result<Self, BoxError> {
            let store = aett::S3Store::connect(aett::S3Config::from_url(url)?).await?;
            let prefix = match store.prefix().trim_end_matches('/') {
                "" => "bank-ledger/".to_owned(),
                prefix => format!("{prefix}-ledger/"),
            };
            Ok(Self {
                client: store.client().clone(),
                bucket: store.bucket().to_owned(),
                prefix,
            })
        }

        async fn line(&self, key: &str) -> Result<Line, BoxError> {
            match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
            {
                Ok(found) => Ok(serde_json::from_slice(
                    &found.body.collect().await?.into_bytes(),
                )?),
                Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                    Ok(Line::default())
                }
                Err(error) => Err(error.into()),
            }
        }

        /// Posts `delta` to `account` unless its event (at `revision`) was posted already.
        pub async fn post(&self, account: &str, revision: u64, delta: i64) -> Result<(), BoxError> {
            let key = format!("{}{account}", self.prefix);
            let mut line = self.line(&key).await?;
            if revision <= line.revision {
                return Ok(());
            }
            line.balance += delta;
            line.entries += 1;
            line.revision = revision;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(ByteStream::from(serde_json::to_vec(&line)?))
                .send()
                .await?;
            Ok(())
        }

        /// Every account's balance.
        pub async fn balances(&self) -> Result<BTreeMap<String, i64>, BoxError> {
            let listed = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .send()
                .await?;
            let mut balances = BTreeMap::new();
            for object in listed.contents() {
                let Some(key) = object.key() else { continue };
                let account = key.trim_start_matches(&self.prefix).to_owned();
                balances.insert(account, self.line(key).await?.balance);
            }
            Ok(balances)
        }
    }
}

/// The DynamoDB ledger: a table beside the store's, one item per account, written in the
/// transaction that advances the projection's checkpoint.
#[cfg(feature = "dynamodb")]
pub mod dynamodb {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    use aws_sdk_dynamodb::Client;

    use super::BoxError;

    /// The ledger's table beside the store's table `store_table`.
    pub fn table_for(store_table: &str) -> String {
        format!("{store_table}_ledger")
    }

    /// Creates the ledger's table unless it exists, and waits until it is active.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), BoxError> {
        let described = client.describe_table().table_name(table).send().await;
        if described.is_ok() {
            return Ok(());
        }
        let created = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("account")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("account")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .send()
            .await;
        if let Err(error) = created {
            if !error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception())
            {
                return Err(error.into());
            }
        }
        for _ in 0..300 {
            let status = client.describe_table().table_name(table).send().await?;
            if status.table.and_then(|t| t.table_status)
                == Some(aws_sdk_dynamodb::types::TableStatus::Active)
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        Err(format!("table {table} did not become active").into())
    }
}

/// The MongoDB collection, one document per account.
#[cfg(feature = "mongodb")]
pub const COLLECTION: &str = "bank_ledger";

/// The ledger's balances as the store's database holds them (`None`: the store has no
/// database, and the projection holds the ledger).
pub async fn read(url: &str) -> Result<Option<BTreeMap<String, i64>>, BoxError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        let db = rusqlite::Connection::open(path)?;
        db.execute_batch(CREATE_TABLE)?;
        let mut statement =
            db.prepare("SELECT account, balance FROM bank_ledger ORDER BY account")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        return Ok(Some(rows.collect::<Result<_, _>>()?));
    }
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.batch_execute(CREATE_TABLE).await?;
        let rows = client
            .query(
                "SELECT account, balance FROM bank_ledger ORDER BY account",
                &[],
            )
            .await?;
        return Ok(Some(
            rows.iter().map(|row| (row.get(0), row.get(1))).collect(),
        ));
    }
    #[cfg(feature = "mongodb")]
    if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
        use futures::TryStreamExt;
        use mongodb::bson::Document;
        let client = mongodb::Client::with_uri_str(url).await?;
        let database = client
            .default_database()
            .unwrap_or_else(|| client.database("aett"));
        let documents: Vec<Document> = database
            .collection::<Document>(COLLECTION)
            .find(mongodb::bson::doc! {})
            .sort(mongodb::bson::doc! {"_id": 1})
            .await?
            .try_collect()
            .await?;
        return documents
            .iter()
            .map(|document| {
                Ok((
                    document.get_str("_id")?.to_owned(),
                    document.get_i64("balance")?,
                ))
            })
            .collect::<Result<_, BoxError>>()
            .map(Some);
    }
    #[cfg(feature = "dynamodb")]
    if url.starts_with("dynamodb://") {
        use aws_sdk_dynamodb::types::AttributeValue;
        let store = aett::DynamoStore::connect(aett::DynamoConfig::from_url(url)?).await?;
        let table = dynamodb::table_for(store.table());
        dynamodb::create_table(store.client(), &table).await?;
        let items = store
            .client()
            .scan()
            .table_name(table)
            .consistent_read(true)
            .send()
            .await?
            .items
            .unwrap_or_default();
        let mut balances = BTreeMap::new();
        for item in items {
            let (Some(AttributeValue::S(account)), Some(AttributeValue::N(balance))) =
                (item.get("account"), item.get("balance"))
            else {
                return Err("a ledger item without account or balance".into());
            };
            balances.insert(account.clone(), balance.parse()?);
        }
        return Ok(Some(balances));
    }
    #[cfg(feature = "s3")]
    if url.starts_with("s3://") {
        return Ok(Some(s3::S3Ledger::open(url).await?.balances().await?));
    }
    Ok(None)
}
