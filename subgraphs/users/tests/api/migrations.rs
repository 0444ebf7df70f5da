use diesel_async::RunQueryDsl;
use kit::testing::TestDatabase;

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    schema: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    versions: i64,
}

#[tokio::test]
async fn replicas_starting_together_migrate_once_inside_the_users_schema() {
    let db = TestDatabase::empty(users::DB_SCHEMA).await;
    let runs = (0..4).map(|_| kit::db::migrate(&db.config, &users::MIGRATIONS));
    for result in futures::future::join_all(runs).await {
        result.expect("every replica's migration call succeeds");
    }
    let pool = db.pool().await;
    let mut conn = pool.get().await.unwrap();
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT table_schema::text AS schema, count(*) OVER ()::bigint AS versions
         FROM information_schema.tables WHERE table_name = '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "one bookkeeping table");
    assert_eq!(rows[0].schema, "users");
    let applied: Vec<Row> = diesel::sql_query(
        "SELECT 'users' AS schema, count(*)::bigint AS versions FROM users.__diesel_schema_migrations",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let dir = kit::testing::migrations_dir(users::DB_SCHEMA);
    let on_disk = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(applied[0].versions, on_disk as i64);
    // The pool's search_path points at the schema: unqualified names resolve there.
    diesel::sql_query("SELECT count(*) FROM users")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    kit::db::migrate(&db.config, &users::MIGRATIONS)
        .await
        .expect("re-running is a no-op");
}
