//! The gateway's own small subgraph: `partnerUsage` and `setPartnerQuota`
//! for ADMIN, over [`super::Usage`]. It is composed into the supergraph
//! like any subgraph (its SDL is [`sdl`], its URL [`URL`]) and answered in
//! process ([`crate::subgraph::local`]): no HTTP hop. A supergraph without
//! it simply has no such fields.
//!
//! The caller is the bearer token the client sent, verified again here as
//! at the edge; tokens whose role is one of `admin_roles` may ask
//! (`UNAUTHENTICATED` without a token, `FORBIDDEN` with another role).

use std::{future::Future, pin::Pin, sync::Arc};

use async_graphql::{
    Context, EmptySubscription, Enum, ErrorExtensions, Object, Schema, SimpleObject,
};
use chrono::{DateTime, Utc};
use hyper::HeaderMap;

use crate::{
    pipeline::{auth::EdgeAuth, persisted::Documents},
    subgraph::{FetchError, SubgraphResponse, local::Local},
    value::Map,
};

use super::{Period, Usage};

/// Where the supergraph says the gateway's subgraph is: the scheme of
/// [`crate::subgraph::local`] and [`AUTHORITY`].
pub const URL: &str = "gateway://usage";

/// The authority of [`URL`], under which the pipeline registers this subgraph.
pub const AUTHORITY: &str = "usage";

/// The subgraph's name in `grocery compose`.
pub const NAME: &str = "gateway";

/// One client's requests and errors of one document in one UTC hour.
#[derive(SimpleObject)]
struct PartnerUsage {
    document: String,
    hour: DateTime<Utc>,
    requests: i64,
    errors: i64,
}

/// The window of a quota.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
enum QuotaPeriod {
    Day,
    Month,
}

/// Who asks: the verified caller, or why there is none.
enum Caller {
    Allowed,
    Refused(&'static str, String),
}

fn refuse(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}

fn allowed(ctx: &Context<'_>) -> async_graphql::Result<()> {
    match ctx.data_opt::<Caller>() {
        Some(Caller::Allowed) => Ok(()),
        Some(Caller::Refused(code, message)) => Err(refuse(code, message.clone())),
        None => Err(refuse("UNAUTHENTICATED", "sign in")),
    }
}

struct Query;

#[Object]
impl Query {
    /// Requests and errors per trusted document per UTC hour of `client`,
    /// from the hour holding `from` to the one holding `to` (ADMIN).
    async fn partner_usage(
        &self,
        ctx: &Context<'_>,
        client: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> async_graphql::Result<Vec<PartnerUsage>> {
        allowed(ctx)?;
        let admin = ctx.data_unchecked::<Arc<Admin>>();
        let rows = admin
            .usage
            .hours(&client, from, to)
            .await
            .map_err(|r| refuse(r.code, r.message))?;
        Ok(rows
            .into_iter()
            .map(|r| PartnerUsage {
                document: r.document,
                hour: r.hour,
                requests: i64::try_from(r.requests).unwrap_or(i64::MAX),
                errors: i64::try_from(r.errors).unwrap_or(i64::MAX),
            })
            .collect())
    }
}

struct Mutation;

#[Object]
impl Mutation {
    /// Sets the quota of `client` on `document` (a name or id of its
    /// manifest) per `period` over the manifest's; a null `limit` removes
    /// it (ADMIN). Answers the limit set.
    async fn set_partner_quota(
        &self,
        ctx: &Context<'_>,
        client: String,
        document: String,
        period: QuotaPeriod,
        limit: Option<i32>,
    ) -> async_graphql::Result<Option<i32>> {
        allowed(ctx)?;
        let admin = ctx.data_unchecked::<Arc<Admin>>();
        let limit = match limit.map(u32::try_from) {
            None => None,
            Some(Ok(limit)) => Some(limit),
            Some(Err(_)) => return Err(refuse("BAD_USER_INPUT", "a quota is at least 0")),
        };
        let period = match period {
            QuotaPeriod::Day => Period::Day,
            QuotaPeriod::Month => Period::Month,
        };
        let manifests = admin.documents.manifests();
        admin
            .usage
            .set_quota(&manifests, &client, &document, period, limit)
            .await
            .map_err(|r| refuse(r.code, r.message))?;
        Ok(limit.and_then(|l| i32::try_from(l).ok()))
    }
}

type AdminSchema = Schema<Query, Mutation, EmptySubscription>;

fn schema() -> AdminSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .enable_federation()
        .finish()
}

/// The subgraph's federation SDL, as `grocery compose` composes it.
pub fn sdl() -> String {
    schema().sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .federation()
            .compose_directive(),
    )
}

/// The subgraph, answered in process.
pub struct Admin {
    schema: AdminSchema,
    usage: Arc<Usage>,
    documents: Arc<Documents>,
    verifier: Option<Arc<EdgeAuth>>,
    roles: Vec<auth::RoleName>,
}

impl Admin {
    /// Over `usage` and the manifests of `documents`, for tokens `verifier`
    /// accepts whose role is one of `roles`.
    pub fn new(
        usage: Arc<Usage>,
        documents: Arc<Documents>,
        verifier: Option<Arc<EdgeAuth>>,
        roles: Vec<auth::RoleName>,
    ) -> Arc<Self> {
        Arc::new(Self {
            schema: schema(),
            usage,
            documents,
            verifier,
            roles,
        })
    }

    async fn caller(&self, headers: &HeaderMap) -> Caller {
        let Some(token) = crate::pipeline::bearer(headers) else {
            return Caller::Refused("UNAUTHENTICATED", "partner usage needs a token".into());
        };
        let Some(verifier) = &self.verifier else {
            return Caller::Refused(
                "FORBIDDEN",
                "this gateway verifies no tokens, so nobody may see partner usage".into(),
            );
        };
        match verifier.verify(token).await {
            Ok(claims) if self.roles.contains(&claims.role) => Caller::Allowed,
            Ok(_) => Caller::Refused("FORBIDDEN", "partner usage is for administrators".into()),
            Err(err) => Caller::Refused("UNAUTHENTICATED", err.to_string()),
        }
    }
}

/// Runs one fetch of the planner against the schema, as its own subgraph would.
struct Fetch(Arc<Admin>);

impl Local for Fetch {
    fn answer<'a>(
        &'a self,
        query: &'a str,
        variables: Map,
        headers: &'a HeaderMap,
    ) -> Pin<Box<dyn Future<Output = Result<SubgraphResponse, FetchError>> + Send + 'a>> {
        Box::pin(async move {
            let admin = &self.0;
            let variables = serde_json::to_value(crate::value::Value::Object(variables))
                .map_err(|e| FetchError::Body(e.to_string()))?;
            let request = async_graphql::Request::new(query)
                .variables(async_graphql::Variables::from_json(variables))
                .data(admin.caller(headers).await)
                .data(admin.clone());
            let response = admin.schema.execute(request).await;
            let json =
                serde_json::to_value(&response).map_err(|e| FetchError::Body(e.to_string()))?;
            let bytes = json.to_string().len();
            let errors = json
                .get("errors")
                .and_then(serde_json::Value::as_array)
                .cloned()
                .unwrap_or_default();
            let data = json.get("data").cloned().unwrap_or(serde_json::Value::Null);
            Ok(SubgraphResponse {
                data: crate::value::Value::from(data),
                errors,
                bytes,
                // Usage and quotas change with every request: never kept.
                cache_control: None,
            })
        })
    }
}

impl Admin {
    /// This subgraph as the executor calls it.
    pub fn local(self: &Arc<Self>) -> Arc<dyn Local> {
        Arc::new(Fetch(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_a_local_one_with_this_authority() {
        let url: hyper::Uri = URL.parse().unwrap();
        assert!(crate::subgraph::local::is_local(&url));
        assert_eq!(url.authority().map(|a| a.as_str()), Some(AUTHORITY));
    }
}
