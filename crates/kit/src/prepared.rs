//! Raw SQL that PostgreSQL prepares once per connection.
//!
//! Diesel's `sql_query` marks itself unsafe to cache, so every run of a raw
//! statement is parsed, analysed and planned again: for the checkout path's
//! one-statement writes (CTEs of a dozen parts) that was about a quarter of
//! the database's CPU. [`prepared`] takes the same text with `$n`
//! placeholders; each run hands diesel the text with every placeholder
//! replaced by a bind of its own, so the text is the same on every run and
//! diesel's per-connection statement cache keeps the prepared statement.

use std::marker::PhantomData;

use diesel::{
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    serialize::ToSql,
    sql_types::{HasSqlType, Untyped},
};

/// A raw statement with its binds; run it with diesel-async's `RunQueryDsl`
/// (`execute`, `load`, `get_result` into `QueryableByName` rows).
pub struct Prepared<'a> {
    sql: &'static str,
    binds: Vec<Box<dyn QueryFragment<Pg> + Send + Sync + 'a>>,
}

/// `sql` with placeholders `$1`, `$2`, … bound in order by [`Prepared::bind`].
/// A placeholder may appear several times. Only static text: the statement
/// cache is keyed by it, so it must not be built per call.
pub fn prepared<'a>(sql: &'static str) -> Prepared<'a> {
    Prepared {
        sql,
        binds: Vec::new(),
    }
}

impl<'a> Prepared<'a> {
    /// Binds the next placeholder to `value` as SQL type `ST`.
    pub fn bind<ST, T>(mut self, value: T) -> Self
    where
        Pg: HasSqlType<ST>,
        T: ToSql<ST, Pg> + Send + Sync + 'a,
        ST: 'static,
    {
        self.binds.push(Box::new(Bind::<ST, T> {
            value,
            sql_type: PhantomData,
        }));
        self
    }
}

struct Bind<ST, T> {
    value: T,
    sql_type: PhantomData<fn() -> ST>,
}

impl<ST, T> QueryFragment<Pg> for Bind<ST, T>
where
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.value)
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        for piece in pieces(self.sql) {
            match piece {
                Piece::Text(text) => out.push_sql(text),
                Piece::Bind(n) => self
                    .binds
                    .get(n.wrapping_sub(1))
                    .ok_or_else(|| {
                        diesel::result::Error::QueryBuilderError(
                            format!("${n} has no bind ({} given)", self.binds.len()).into(),
                        )
                    })?
                    .walk_ast(out.reborrow())?,
            }
        }
        Ok(())
    }
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    // Cached by its text, which never changes between runs.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

#[derive(Debug, PartialEq, Eq)]
enum Piece<'s> {
    Text(&'s str),
    /// A placeholder's number (1-based).
    Bind(usize),
}

/// `sql` cut at its placeholders: `$` followed by digits. Any other `$`
/// (dollar quoting) is text.
///
/// An iterator that jumps from `$` to `$` (`str::find` of one ASCII byte is
/// `memchr`): diesel walks a statement three times per run (binds, text,
/// cache key), and a byte-by-byte scan into a new `Vec` each time was a
/// measurable share of the checkout path's CPU for its 3 KB statements.
fn pieces(sql: &str) -> Pieces<'_> {
    Pieces {
        sql,
        at: 0,
        from: 0,
    }
}

struct Pieces<'s> {
    sql: &'s str,
    /// Where the next piece starts.
    at: usize,
    /// Where to look for the next `$` (past `at` when a `$` was not a placeholder).
    from: usize,
}

impl<'s> Iterator for Pieces<'s> {
    type Item = Piece<'s>;

    fn next(&mut self) -> Option<Piece<'s>> {
        let bytes = self.sql.as_bytes();
        loop {
            let Some(found) = self.sql[self.from..].find('$') else {
                // No placeholder left: the rest is text.
                let rest = &self.sql[self.at..];
                self.at = self.sql.len();
                self.from = self.at;
                return (!rest.is_empty()).then_some(Piece::Text(rest));
            };
            let dollar = self.from + found;
            let digits = bytes[dollar + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 {
                self.from = dollar + 1;
                continue;
            }
            if self.at < dollar {
                // The text before the placeholder; the placeholder comes next.
                let text = &self.sql[self.at..dollar];
                self.at = dollar;
                self.from = dollar;
                return Some(Piece::Text(text));
            }
            let n = self.sql[dollar + 1..dollar + 1 + digits]
                .parse()
                .unwrap_or(0);
            self.at = dollar + 1 + digits;
            self.from = self.at;
            return Some(Piece::Bind(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_cut_out_and_other_dollars_kept() {
        let cut = |sql| pieces(sql).collect::<Vec<_>>();
        assert_eq!(
            cut("SELECT $1::text, $12 || $$a$$, $1"),
            [
                Piece::Text("SELECT "),
                Piece::Bind(1),
                Piece::Text("::text, "),
                Piece::Bind(12),
                Piece::Text(" || $$a$$, "),
                Piece::Bind(1),
            ]
        );
        assert_eq!(cut("no binds $"), [Piece::Text("no binds $")]);
        assert_eq!(cut(""), []);
        assert_eq!(
            cut("$1$2 $ $x$3"),
            [
                Piece::Bind(1),
                Piece::Bind(2),
                Piece::Text(" $ $x"),
                Piece::Bind(3),
            ]
        );
    }

    #[test]
    fn a_placeholder_without_a_bind_is_an_error_not_a_panic() {
        use diesel::query_builder::QueryBuilder;
        let query = prepared("SELECT $1, $2").bind::<diesel::sql_types::Int4, _>(7);
        let mut builder = diesel::pg::PgQueryBuilder::default();
        let err = query.to_sql(&mut builder, &Pg).expect_err("$2 has no bind");
        assert!(err.to_string().contains("$2 has no bind"), "{err}");
        let query = prepared("SELECT $1, $1").bind::<diesel::sql_types::Int4, _>(7);
        let mut builder = diesel::pg::PgQueryBuilder::default();
        query.to_sql(&mut builder, &Pg).unwrap();
        assert_eq!(builder.finish(), "SELECT $1, $2");
    }
}
