//! A subgraph's exported spans, continuing the caller's trace: one server
//! span per HTTP request (under the gateway's fetch span its `traceparent`
//! names), one per GraphQL operation, and one per SQL statement, which
//! Diesel's connection instrumentation opens and closes.
//!
//! The span a statement belongs under is the current task's ([`CURRENT`]):
//! Diesel calls its instrumentation deep inside a query, where nothing can be
//! passed, so the request's context rides in a tokio task-local, set only
//! while a sampled request runs. DataLoader batches run in tasks of their
//! own; [`spawn`] carries the context into them. With tracing off there is
//! no layer, no task-local and no span: a statement costs one failed lookup.

use std::{collections::VecDeque, future::Future};

use axum::{
    Router,
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use diesel::connection::InstrumentationEvent;
use telemetry::{
    TRACEPARENT,
    otel::{Kind, Span, SpanContext, Tracer},
};

/// The span the current request's work goes under, with its tracer.
#[derive(Clone)]
struct Current {
    tracer: Tracer,
    context: SpanContext,
}

tokio::task_local! {
    static CURRENT: Current;
}

fn current() -> Option<Current> {
    CURRENT.try_with(Clone::clone).ok()
}

/// `router` with a server span per request when `tracer` is on; `router` as it is otherwise.
pub fn layer(router: Router, tracer: &Tracer) -> Router {
    if !tracer.is_on() {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(tracer.clone(), server))
}

async fn server(State(tracer): State<Tracer>, request: Request, next: Next) -> Response {
    let incoming = request
        .headers()
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    // Probes every few seconds would bury the traces that matter.
    if matches!(request.uri().path(), "/health" | "/ready") {
        return next.run(request).await;
    }
    let mut span = tracer.open("request", Kind::Server, incoming);
    let Some(context) = span.context().filter(|_| span.is_recording()) else {
        return next.run(request).await;
    };
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    span.rename(format_args!("{method} {path}"));
    span.set("http.request.method", method.as_str());
    span.set("url.path", path);
    let response = CURRENT
        .scope(Current { tracer, context }, next.run(request))
        .await;
    let status = response.status();
    span.set("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.fail(|| status.to_string());
    }
    response
}

/// A GraphQL operation's span, opened before it runs: [`operation`].
pub struct Operation(Option<(Span, Current)>);

impl Operation {
    /// Runs `run` under the span (its statements' spans below it), then ends it.
    pub async fn run<T>(self, run: impl Future<Output = T>) -> T {
        match self.0 {
            None => run.await,
            Some((span, current)) => {
                let out = CURRENT.scope(current, run).await;
                drop(span);
                out
            }
        }
    }
}

/// The span of the operation `query` (named `operation_name`), when the
/// request is traced; nothing otherwise (nothing read, nothing copied).
pub fn operation(operation_name: Option<&str>, query: &str) -> Operation {
    let Some(parent) = current() else {
        return Operation(None);
    };
    let mut span = parent
        .tracer
        .child(Some(parent.context), "graphql", Kind::Internal);
    let Some(context) = span.context() else {
        return Operation(None);
    };
    let kind = operation_type(query);
    match operation_name {
        Some(name) => span.rename(format_args!("{kind} {name}")),
        None => span.rename(format_args!("{kind}")),
    }
    span.set("graphql.operation.type", kind);
    if let Some(name) = operation_name {
        span.set("graphql.operation.name", name);
    }
    let current = Current {
        tracer: parent.tracer,
        context,
    };
    Operation(Some((span, current)))
}

/// The operation's type from its first keyword: `{ … }` is a query.
fn operation_type(query: &str) -> &'static str {
    let query = query.trim_start();
    if query.starts_with("mutation") {
        "mutation"
    } else if query.starts_with("subscription") {
        "subscription"
    } else {
        "query"
    }
}

/// `tokio::spawn`, keeping the current request's span for the task (a
/// DataLoader's spawner: its batch's statements go under the request that
/// started it).
pub fn spawn<F>(task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match current() {
        Some(current) => tokio::spawn(CURRENT.scope(current, task)),
        None => tokio::spawn(task),
    }
}

/// A connection's spans: one per statement, opened when it starts and closed
/// when its answer is read (in order: a pipelined connection answers in order).
pub(crate) struct SqlSpans {
    schema: String,
    open: VecDeque<Span>,
}

impl SqlSpans {
    pub(crate) fn new(schema: &str) -> Self {
        Self {
            schema: schema.to_owned(),
            open: VecDeque::new(),
        }
    }
}

impl SqlSpans {
    /// Opens or closes a statement's span; any other event is not its business.
    pub(crate) fn observe(&mut self, event: &InstrumentationEvent<'_>) {
        match *event {
            InstrumentationEvent::StartQuery { query, .. } => {
                let Some(current) = current() else { return };
                let mut span = current
                    .tracer
                    .child(Some(current.context), "sql", Kind::Client);
                if span.is_recording() {
                    let text = query.to_string();
                    // Bind values (passwords' hashes, tokens) never leave the process.
                    let text = text.split(" -- binds: ").next().unwrap_or_default();
                    let operation = text
                        .split_whitespace()
                        .next()
                        .unwrap_or("SQL")
                        .to_ascii_uppercase();
                    span.rename(format_args!("{operation} {}", self.schema));
                    span.set("db.system.name", "postgresql");
                    span.set("db.namespace", self.schema.as_str());
                    span.set("db.operation.name", operation);
                    span.set("db.query.text", text);
                }
                self.open.push_back(span);
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                if let Some(mut span) = self.open.pop_front()
                    && let Some(error) = error
                {
                    span.fail(|| error.to_string());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_type_comes_from_the_first_keyword() {
        assert_eq!(operation_type("  mutation M { a }"), "mutation");
        assert_eq!(operation_type("subscription { a }"), "subscription");
        assert_eq!(operation_type("query Q { a }"), "query");
        assert_eq!(operation_type("{ a }"), "query");
    }
}
