//! Runs the event store conformance suite against SQLite and the real PostgreSQL.
//! PostgreSQL: `FLOTILLA_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/test).

use std::sync::Arc;

use async_trait::async_trait;
use flotilla_core::EventStore;
use flotilla_core::conformance::{Fresh, StoreHarness, Tamper, Tampering};
use flotilla_store::{PgStore, SqliteStore};

pub fn postgres_url() -> String {
    std::env::var("FLOTILLA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub struct PostgresHarness;

struct PgTamper {
    store: Arc<PgStore>,
}

#[async_trait]
impl Tamper for PgTamper {
    async fn apply(&self, position: u64, what: Tampering) {
        let sql = match what {
            Tampering::PayloadByte => {
                "UPDATE events SET payload = set_byte(payload, 0, get_byte(payload, 0) # 1) WHERE global_position = $1"
            }
            Tampering::MetadataByte => {
                "UPDATE events SET actor = 'X' || substr(actor, 2) WHERE global_position = $1"
            }
            Tampering::HashByte => {
                "UPDATE events SET hash = set_byte(hash, 0, get_byte(hash, 0) # 1) WHERE global_position = $1"
            }
            Tampering::DeleteRow => "DELETE FROM events WHERE global_position = $1",
        };
        let r = sqlx::query(sql)
            .bind(position as i64)
            .execute(self.store.pool())
            .await
            .expect("tamper");
        assert_eq!(r.rows_affected(), 1, "no event at position {position}");
    }

    async fn second_handle(&self) -> Option<Arc<dyn EventStore>> {
        Some(Arc::new(
            PgStore::connect(&postgres_url(), self.store.schema())
                .await
                .expect("second handle"),
        ))
    }
}

impl Drop for PgTamper {
    fn drop(&mut self) {
        let schema = self.store.schema().to_owned();
        // Drop the test schema on a thread of its own (Drop cannot await).
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(PgStore::drop_schema(&postgres_url(), &schema));
            }
        })
        .join();
    }
}

#[async_trait]
impl StoreHarness for PostgresHarness {
    async fn fresh(&self) -> Fresh {
        let schema = format!("conformance_{}", uuid::Uuid::now_v7().simple());
        let store = Arc::new(
            PgStore::connect(&postgres_url(), &schema)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {} is needed for this test ({e}); run ./scripts/test.sh, which starts it", postgres_url())),
        );
        Fresh {
            store: store.clone(),
            tamper: Box::new(PgTamper { store }),
        }
    }
}

pub struct SqliteHarness;

struct SqliteTamper {
    store: Arc<SqliteStore>,
    url: String,
    _dir: tempfile::TempDir,
}

#[async_trait]
impl Tamper for SqliteTamper {
    async fn apply(&self, position: u64, what: Tampering) {
        let sql = match what {
            Tampering::PayloadByte => {
                "UPDATE events SET payload = (CASE WHEN substr(payload, 1, 1) = X'00' THEN X'01' ELSE X'00' END) || substr(payload, 2) WHERE global_position = ?"
            }
            Tampering::MetadataByte => {
                "UPDATE events SET actor = 'X' || substr(actor, 2) WHERE global_position = ?"
            }
            Tampering::HashByte => {
                "UPDATE events SET hash = (CASE WHEN substr(hash, 1, 1) = X'00' THEN X'01' ELSE X'00' END) || substr(hash, 2) WHERE global_position = ?"
            }
            Tampering::DeleteRow => "DELETE FROM events WHERE global_position = ?",
        };
        let r = sqlx::query(sql)
            .bind(position as i64)
            .execute(self.store.pool())
            .await
            .expect("tamper");
        assert_eq!(r.rows_affected(), 1, "no event at position {position}");
    }

    async fn second_handle(&self) -> Option<Arc<dyn EventStore>> {
        Some(Arc::new(
            SqliteStore::connect(&self.url)
                .await
                .expect("second handle"),
        ))
    }
}

#[async_trait]
impl StoreHarness for SqliteHarness {
    async fn fresh(&self) -> Fresh {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let store = Arc::new(SqliteStore::connect(&url).await.expect("open sqlite"));
        Fresh {
            store: store.clone(),
            tamper: Box::new(SqliteTamper {
                store,
                url,
                _dir: dir,
            }),
        }
    }
}

mod sqlite {
    flotilla_core::store_conformance_tests!(crate::SqliteHarness);
}

mod postgres {
    flotilla_core::store_conformance_tests!(crate::PostgresHarness);
}
