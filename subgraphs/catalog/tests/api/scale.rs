//! Name search at catalog scale: the trigram index must carry it.

use diesel::sql_types::{Array, Json, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::support::*;

const PRODUCTS: &str = "query($search: String) {
    products(first: 20, search: $search) { totalCount edges { node { sku name } } } }";

#[derive(diesel::QueryableByName)]
struct Plan {
    #[diesel(sql_type = Json, column_name = "QUERY PLAN")]
    plan: Value,
}

#[derive(diesel::QueryableByName)]
struct Types {
    #[diesel(sql_type = Array<Text>)]
    types: Vec<String>,
}

#[derive(diesel::QueryableByName)]
struct Word {
    #[diesel(sql_type = Text)]
    word: String,
}

/// The plan of `sql` exactly as the subgraph sent it, its parameters filled
/// by type: the search `term`, `true` for the active filter, 21 for the limit.
async fn explain(conn: &mut AsyncPgConnection, sql: &str, term: &str) -> Value {
    conn.batch_execute(&format!("PREPARE search_plan AS {sql}"))
        .await
        .unwrap();
    let types: Types = diesel::sql_query(
        "SELECT parameter_types::text[] AS types FROM pg_prepared_statements WHERE name = 'search_plan'",
    )
    .get_result(conn)
    .await
    .unwrap();
    let args: Vec<String> = types
        .types
        .iter()
        .map(|t| match t.as_str() {
            "text" => format!("'{term}'"),
            "boolean" => "true".into(),
            "bigint" => "21".into(),
            other => panic!("unexpected parameter type {other} in {sql}"),
        })
        .collect();
    let plan: Plan = diesel::sql_query(format!(
        "EXPLAIN (FORMAT JSON) EXECUTE search_plan({})",
        args.join(", ")
    ))
    .get_result(conn)
    .await
    .unwrap();
    conn.batch_execute("DEALLOCATE search_plan").await.unwrap();
    plan.plan
}

fn uses_index(plan: &Value, index: &str) -> bool {
    match plan {
        Value::Object(node) => {
            node.get("Index Name").and_then(Value::as_str) == Some(index)
                || node.values().any(|v| uses_index(v, index))
        }
        Value::Array(items) => items.iter().any(|v| uses_index(v, index)),
        _ => false,
    }
}

#[tokio::test]
async fn name_search_uses_the_trigram_index_at_100k_products() {
    let app = TestApp::new().await;
    let mut conn = app.pool.get().await.unwrap();
    conn.batch_execute(
        "INSERT INTO products (sku, name, category, metadata)
         SELECT 'SKU' || lpad(i::text, 6, '0'),
                format('Widget %s %s', i, md5(i::text)),
                (ARRAY['fruit', 'dairy', 'bakery', 'vegetables', 'pantry'])[1 + i % 5],
                jsonb_build_object('batch', i)
         FROM generate_series(1, 100000) AS i;
         ANALYZE products;",
    )
    .await
    .unwrap();
    assert_eq!(app.count().await, 100_000);
    let term: Word = diesel::sql_query("SELECT upper(substr(md5('77777'), 1, 12)) AS word")
        .get_result(&mut conn)
        .await
        .unwrap();
    let term = term.word;

    app.log.clear();
    let resp = app.gql(None, PRODUCTS, json!({ "search": term })).await;
    assert_no_errors(&resp);
    assert_eq!(resp["data"]["products"]["totalCount"], 1);
    assert_eq!(
        resp["data"]["products"]["edges"][0]["node"]["sku"],
        "SKU077777"
    );

    let searches: Vec<String> = app
        .log
        .statements()
        .into_iter()
        .filter(|s| s.contains("LIKE"))
        // The log appends the bind values as a comment; the SQL is what was prepared.
        .map(|s| s.split(" -- binds:").next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(searches.len(), 2, "the count and the page: {searches:#?}");
    for sql in &searches {
        let plan = explain(&mut conn, sql, &term).await;
        assert!(
            uses_index(&plan, "products_name_trgm_idx"),
            "{sql}\nshould use the trigram index:\n{plan:#}"
        );
    }
}
