use diesel_async::RunQueryDsl;
use kit::testing::{TestDatabase, migrations_dir};

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[tokio::test]
async fn replicas_starting_together_migrate_once_inside_the_catalog_schema() {
    let db = TestDatabase::empty(catalog::DB_SCHEMA).await;
    let runs = (0..4).map(|_| kit::db::migrate(&db.config, &catalog::MIGRATIONS));
    for result in futures::future::join_all(runs).await {
        result.expect("every replica's migration call succeeds");
    }
    let pool = db.pool().await;
    let mut conn = pool.get().await.unwrap();
    let schemas: Vec<Row> = diesel::sql_query(
        "SELECT table_schema::text AS name FROM information_schema.tables
         WHERE table_name IN ('products', '__diesel_schema_migrations') ORDER BY table_name",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let schemas: Vec<_> = schemas.into_iter().map(|r| r.name).collect();
    assert_eq!(schemas, ["catalog", "catalog"]);
    let applied: Vec<Row> =
        diesel::sql_query("SELECT version::text AS name FROM catalog.__diesel_schema_migrations")
            .load(&mut conn)
            .await
            .unwrap();
    let on_disk = std::fs::read_dir(migrations_dir(catalog::DB_SCHEMA))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(applied.len(), on_disk);
    let extension: Vec<Row> = diesel::sql_query(
        "SELECT n.nspname::text AS name FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pg_trgm'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(extension.len(), 1, "pg_trgm is installed");
    assert_eq!(extension[0].name, "public");
    drop(conn);
    kit::db::migrate(&db.config, &catalog::MIGRATIONS)
        .await
        .expect("re-running is a no-op");
}
