//! `kit::prepared` on a real PostgreSQL: the statement is prepared once per
//! connection and reused, which `diesel::sql_query` never does.

use diesel::sql_types::{BigInt, Int4, Text};
use diesel_async::RunQueryDsl;
use kit::{prepared::prepared, testing::TestDatabase};

#[derive(diesel::QueryableByName)]
struct Answer {
    #[diesel(sql_type = Int4)]
    n: i32,
    #[diesel(sql_type = Text)]
    word: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

async fn prepared_like(conn: &mut diesel_async::AsyncPgConnection, marker: &str) -> i64 {
    diesel::sql_query(
        "SELECT count(*) AS count FROM pg_prepared_statements WHERE statement LIKE '%' || $1 || '%'",
    )
    .bind::<Text, _>(marker)
    .get_result::<Count>(conn)
    .await
    .unwrap()
    .count
}

#[tokio::test]
async fn a_raw_statement_is_prepared_once_and_reused() {
    let db = TestDatabase::empty("prepared_test").await;
    let pool = db.pool().await;
    let mut conn = pool.get().await.unwrap();
    for i in 0..3 {
        // `$1` twice: each use is bound on its own, with the same value.
        let answer: Answer = prepared("SELECT $1::int4 + $1 AS n, $2 AS word /* kit-prepared */")
            .bind::<Int4, _>(i)
            .bind::<Text, _>("same text, every run")
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            (answer.n, answer.word.as_str()),
            (2 * i, "same text, every run")
        );
    }
    assert_eq!(prepared_like(&mut conn, "kit-prepared */").await, 1);
    // What it replaces: diesel's `sql_query` prepares nothing it can reuse.
    for i in 0..3 {
        let _: Answer = diesel::sql_query("SELECT $1::int4 AS n, 'x' AS word /* kit-unprepared */")
            .bind::<Int4, _>(i)
            .get_result(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(prepared_like(&mut conn, "kit-unprepared */").await, 0);
    // A placeholder without a bind is refused before anything is sent.
    let err = prepared("SELECT $1::int4 AS n, $2 AS word")
        .bind::<Int4, _>(1)
        .get_result::<Answer>(&mut conn)
        .await
        .err()
        .expect("$2 has no bind");
    assert!(err.to_string().contains("$2 has no bind"), "{err}");
}
