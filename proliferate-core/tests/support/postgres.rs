//! A database of its own for each test, on the machine's PostgreSQL
//! (`PROLIFERATE_TEST_POSTGRES`, by default `postgres://postgres@127.0.0.1:5432/postgres`).
//! Missing is a failure, not a skip.

use sqlx::{Connection, PgConnection};

/// A fresh, empty database, dropped by [`TestDatabase::drop_database`].
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    name: String,
    server: String,
}

impl TestDatabase {
    /// Creates a database with a new name on the test server.
    pub async fn create() -> Self {
        let server = std::env::var("PROLIFERATE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("proliferate_test_{}", uuid::Uuid::new_v4().simple());
        let mut connection = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|error| panic!("PostgreSQL at {server} is reachable: {error}"));
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .unwrap();
        let (base, _) = server.rsplit_once('/').expect("the URL names a database");
        Self {
            url: format!("{base}/{name}"),
            name,
            server,
        }
    }

    /// Drops the database, closing whatever is still connected to it.
    pub async fn drop_database(self) {
        let mut connection = PgConnection::connect(&self.server).await.unwrap();
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::raw_sql(&drop).execute(&mut connection).await.unwrap();
    }
}
