//! Planning: a loaded supergraph turns client operations into query plans.
//!
//! Stages, in order: parse the document, validate it against the API schema
//! (join/federation internals and `@inaccessible` removed), normalize it
//! (operation selected, fragments inlined, constant conditions applied), and
//! plan it. Plans depend only on the normalized operation, never on variable
//! values, so they are cached by its hash. Planning is CPU work: callers on an
//! async runtime run [`Supergraph::plan`] on the blocking pool.

use std::{
    collections::HashMap,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, Mutex},
};

pub mod compose;
pub mod field_merging;
pub mod planner_input;
pub mod validation_gaps;

pub use compose::{SubgraphSource, compose};

use crate::{
    execution::projection::{Shapes, aliases::AliasPrefix},
    pipeline::{
        coerce::InputTypes,
        limits::{Exceeded, Limits},
    },
};
use graphql_tools::validation::{rules::*, utils::ValidationError, validate::ValidationPlan};
use hive_router_query_planner::{
    ast::{
        normalization::normalize_operation, operation::OperationDefinition,
        selection_item::SelectionItem, selection_set::FieldSelection,
    },
    planner::{Planner, QueryPlannerOptions, plan_nodes::QueryPlan},
    utils::{
        cancellation::CancellationToken,
        parsing::{safe_parse_operation_with_token_limit, safe_parse_schema},
    },
};

/// Plans kept; beyond it the cache is emptied (operations are usually few).
const PLAN_CACHE_CAPACITY: usize = 10_000;
/// Bytes the plans of each cache may weigh together (see [`Prepared::weight`]):
/// 10,000 distinct 200 KB documents would otherwise keep 2 GB.
const PLAN_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A cache emptied when it is full by count or by weight (plans are
/// usually few; a flood of distinct documents starts it over).
struct Bounded<K, V> {
    entries: HashMap<K, V>,
    weight: usize,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            weight: 0,
        }
    }
}

impl<K: std::hash::Hash + Eq, V> Bounded<K, V> {
    /// Makes room for an entry of `weight` bytes.
    fn room(&mut self, weight: usize) {
        if self.entries.len() >= PLAN_CACHE_CAPACITY || self.weight + weight > PLAN_CACHE_BYTES {
            self.entries.clear();
            self.weight = 0;
        }
        self.weight += weight;
    }
}

/// The names of every field of `supergraph` (its subgraphs' own among them).
fn supergraph_field_names<'a>(
    supergraph: &'a graphql_tools::parser::schema::Document<'static, String>,
) -> Vec<&'a str> {
    use graphql_tools::parser::schema::{Definition, TypeDefinition};
    let mut names = Vec::new();
    for definition in &supergraph.definitions {
        let fields = match definition {
            Definition::TypeDefinition(TypeDefinition::Object(o)) => &o.fields,
            Definition::TypeDefinition(TypeDefinition::Interface(i)) => &i.fields,
            _ => continue,
        };
        names.extend(fields.iter().map(|f| f.name.as_str()));
    }
    names
}

/// Validation errors kept at most; more say nothing new and cost bytes.
const MAX_VALIDATION_ERRORS: usize = 100;

/// graphql-tools' validation rules but its pairwise field-merging rule,
/// which [`field_merging`] replaces with a linear one (what these
/// rules miss, [`validation_gaps`] checks).
fn validation_rules() -> ValidationPlan {
    ValidationPlan::from(vec![
        Box::new(UniqueOperationNames::new()),
        Box::new(LoneAnonymousOperation::new()),
        Box::new(SingleFieldSubscriptions::new()),
        Box::new(KnownTypeNames::new()),
        Box::new(FragmentsOnCompositeTypes::new()),
        Box::new(VariablesAreInputTypes::new()),
        Box::new(LeafFieldSelections::new()),
        Box::new(FieldsOnCorrectType::new()),
        Box::new(UniqueFragmentNames::new()),
        Box::new(KnownFragmentNames::new()),
        Box::new(NoUnusedFragments::new()),
        Box::new(NoFragmentsCycle::new()),
        Box::new(PossibleFragmentSpreads::new()),
        Box::new(NoUnusedVariables::new()),
        Box::new(NoUndefinedVariables::new()),
        Box::new(KnownArgumentNames::new()),
        Box::new(UniqueArgumentNames::new()),
        Box::new(UniqueVariableNames::new()),
        Box::new(ProvidedRequiredArguments::new()),
        Box::new(KnownDirectives::new()),
        Box::new(VariablesInAllowedPosition::new()),
        Box::new(ValuesOfCorrectType::new()),
        Box::new(UniqueInputFieldNames::new()),
        Box::new(UniqueDirectivesPerLocation::new()),
    ])
}

/// Why an operation could not be planned, with the `extensions.code` it is answered with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Parse(String),
    #[error("{}", .0.first().map(|e| e.message.as_str()).unwrap_or("invalid operation"))]
    Validation(Vec<ValidationError>),
    #[error("{0}")]
    Operation(String),
    #[error("the operation could not be planned: {0}")]
    Planning(String),
    #[error("{0}")]
    Limit(Exceeded),
    #[error("{0}")]
    Variables(String),
    #[error("planning the operation took longer than allowed; simplify it")]
    TimedOut,
}

impl PlanError {
    /// The `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Parse(_) => "GRAPHQL_PARSE_FAILED",
            Self::Validation(_) | Self::Operation(_) => "GRAPHQL_VALIDATION_FAILED",
            Self::Limit(exceeded) => exceeded.limit.code(),
            Self::Variables(_) => "BAD_USER_INPUT",
            Self::Planning(_) => "INTERNAL_SERVER_ERROR",
            Self::TimedOut => "PLAN_TIMEOUT",
        }
    }
}

/// A planned operation: the plan and the normalized operation the response is shaped by.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub plan: Arc<QueryPlan>,
    pub operation: Arc<OperationDefinition>,
    /// Root `__schema`/`__type` fields: answered by the gateway, not planned.
    pub introspection: Arc<Vec<FieldSelection>>,
    /// How many bytes the last answer to this operation took: the next one
    /// is written into a buffer of that size, not grown into it.
    pub answer_size: Arc<std::sync::atomic::AtomicUsize>,
    /// Roughly what this plan holds in memory, for the caches' bound: its
    /// text and a few hundred bytes per field once fragments are expanded.
    pub weight: usize,
}

/// The plans of one text, by operation name (a document usually holds one).
type ByName = Vec<(Option<String>, Prepared)>;

/// A supergraph ready to plan against.
pub struct Supergraph {
    planner: Planner,
    rules: ValidationPlan,
    shapes: Shapes,
    inputs: InputTypes,
    limits: Limits,
    plans: Mutex<Bounded<u64, Prepared>>,
    /// The same plans by exact request text: a repeat skips parsing,
    /// validation and normalization (most traffic repeats a few operations).
    /// Keyed by the text, then the operation name: a lookup borrows the
    /// request's text instead of copying it.
    by_text: Mutex<Bounded<String, ByName>>,
    /// How many times the planner ran: what a refusal must not cost.
    planner_runs: std::sync::atomic::AtomicU64,
}

/// Why a supergraph could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid supergraph: {0}")]
pub struct LoadError(String);

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "the planner panicked".into())
}

impl Supergraph {
    /// Loads a supergraph SDL (adding root `@join__type`s where a composer left them out).
    pub fn load(sdl: &str) -> Result<Self, LoadError> {
        let mut document = safe_parse_schema(sdl).map_err(|e| LoadError(e.to_string()))?;
        compose::add_root_join_types(&mut document);
        // The planner asserts rather than reports on some malformed inputs.
        let planner = catch_unwind(AssertUnwindSafe(|| {
            Planner::new_from_supergraph(&document, QueryPlannerOptions::default())
        }))
        .map_err(|panic| LoadError(panic_message(panic)))?
        .map_err(|e| LoadError(e.to_string()))?;
        let mut planner = planner;
        planner.consumer_schema = Arc::new(
            Arc::new(crate::pipeline::introspection::with_spec_built_ins(
                &planner.consumer_schema.document,
            ))
            .into(),
        );
        let prefix = AliasPrefix::avoiding(supergraph_field_names(&document).into_iter());
        let shapes = Shapes::new(&planner.consumer_schema.document)
            .with_alias_prefix(prefix)
            .with_entity_keys(&document);
        let inputs = InputTypes::new(&planner.consumer_schema.document);
        Ok(Self {
            planner,
            rules: validation_rules(),
            shapes,
            inputs,
            limits: Limits::default(),
            plans: Mutex::default(),
            by_text: Mutex::default(),
            planner_runs: Default::default(),
        })
    }

    /// Each subgraph's name and URL, as the supergraph declares them.
    pub fn subgraphs(&self) -> &HashMap<String, String> {
        &self.planner.supergraph.subgraph_endpoint_map
    }

    /// The limits operations are held to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The same supergraph with other operation limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The API schema's types, for shaping responses.
    pub fn shapes(&self) -> &Shapes {
        &self.shapes
    }

    /// The client's `variables` coerced to what `prepared` declares:
    /// defaults filled in, wrong or missing values refused.
    pub fn coerce_variables(
        &self,
        prepared: &Prepared,
        variables: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, PlanError> {
        let definitions = prepared
            .operation
            .variable_definitions
            .as_deref()
            .unwrap_or_default();
        self.inputs
            .coerce(definitions, variables)
            .map_err(PlanError::Variables)
    }

    /// The API schema clients see.
    pub fn api_schema(&self) -> &graphql_tools::parser::schema::Document<'static, String> {
        &self.planner.consumer_schema.document
    }

    /// The API schema clients see, as SDL.
    pub fn api_sdl(&self) -> String {
        self.planner.consumer_schema.document.to_string()
    }

    /// Parses, validates, normalizes and plans `query`; cached by exact text
    /// and by normalized operation. Refusals are not cached.
    pub fn plan(&self, query: &str, operation_name: Option<&str>) -> Result<Prepared, PlanError> {
        self.plan_cancellable(query, operation_name, &self.plan_deadline())
    }

    /// A token that cancels planning after the limits' `max_plan_time`.
    pub fn plan_deadline(&self) -> CancellationToken {
        CancellationToken::with_timeout(self.limits.max_plan_time)
    }

    /// [`Self::plan`], given up when `cancel` is cancelled or its deadline passes.
    pub fn plan_cancellable(
        &self,
        query: &str,
        operation_name: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Prepared, PlanError> {
        if let Some(prepared) = self.cached(query, operation_name) {
            return Ok(prepared);
        }
        let prepared = self.prepare(query, operation_name, cancel)?;
        if let Ok(mut cache) = self.by_text.lock() {
            cache.room(prepared.weight + query.len());
            cache
                .entries
                .entry(query.to_owned())
                .or_default()
                .push((operation_name.map(str::to_owned), prepared.clone()));
        }
        Ok(prepared)
    }

    /// The plan of exactly this text, if it was planned before: no CPU work,
    /// so callers on async workers may ask before going to the blocking pool.
    pub fn cached(&self, query: &str, operation_name: Option<&str>) -> Option<Prepared> {
        let cache = self.by_text.lock().ok()?;
        cache
            .entries
            .get(query)?
            .iter()
            .find(|(name, _)| name.as_deref() == operation_name)
            .map(|(_, prepared)| prepared.clone())
    }

    fn prepare(
        &self,
        query: &str,
        operation_name: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Prepared, PlanError> {
        let document = safe_parse_operation_with_token_limit(query, self.limits.max_tokens)
            .map_err(|e| {
                let message = e.to_string();
                if message.contains("Token limit exceeded") {
                    PlanError::Limit(Exceeded::tokens(self.limits.max_tokens))
                } else {
                    PlanError::Parse(message)
                }
            })?;
        // What the document costs, before any stage expands it.
        let cost = self.limits.check(&document).map_err(PlanError::Limit)?;
        let weight = query.len() + usize::try_from(cost.fields).unwrap_or(usize::MAX / 2) * 256;
        if operation_name.is_none() {
            let operations = document
                .definitions
                .iter()
                .filter(|d| {
                    matches!(
                        d,
                        graphql_tools::static_graphql::query::Definition::Operation(_)
                    )
                })
                .count();
            if operations > 1 {
                return Err(PlanError::Operation(format!(
                    "the document has {operations} operations: name the one to run in operationName"
                )));
            }
        }
        let schema = &self.planner.consumer_schema.document;
        let mut errors =
            graphql_tools::validation::validate::validate(schema, &document, &self.rules);
        if errors.len() < MAX_VALIDATION_ERRORS {
            let missed =
                validation_gaps::errors(schema, &document, MAX_VALIDATION_ERRORS - errors.len());
            errors.extend(missed);
        }
        if errors.len() < MAX_VALIDATION_ERRORS {
            let conflicts =
                field_merging::conflicts(schema, &document, MAX_VALIDATION_ERRORS - errors.len());
            errors.extend(conflicts.into_iter().map(|c| ValidationError {
                locations: Vec::new(),
                message: c.message(),
                error_code: "OverlappingFieldsCanBeMerged",
            }));
        }
        if !errors.is_empty() {
            return Err(PlanError::Validation(errors));
        }
        let mut normalized =
            normalize_operation(&self.planner.supergraph, &document, operation_name)
                .map_err(|e| PlanError::Operation(e.to_string()))?;
        planner_input::prune_emptied(&mut normalized.operation.selection_set);
        let key = normalized.operation.hash();
        if let Some(prepared) = self
            .plans
            .lock()
            .ok()
            .and_then(|plans| plans.entries.get(&key).cloned())
        {
            return Ok(prepared);
        }
        // Introspection is the gateway's to answer: plan only the rest.
        // The planner (and the response tree) see client aliases renamed;
        // projection shapes the answer by the client's own operation.
        let mut renamed = normalized.operation.selection_set.clone();
        self.shapes.alias_prefix().rename(&mut renamed);
        let (introspection, planned_items): (Vec<_>, Vec<_>) =
            renamed.items.into_iter().partition(|item| {
                matches!(item, SelectionItem::Field(f) if f.name == "__schema" || f.name == "__type")
            });
        let introspection: Vec<FieldSelection> = introspection
            .into_iter()
            .filter_map(|item| match item {
                SelectionItem::Field(f) => Some(f),
                _ => None,
            })
            .collect();
        let only_typename = planned_items
            .iter()
            .all(|item| matches!(item, SelectionItem::Field(f) if f.name == "__typename"));
        // Nothing left to fetch (introspection only, or every root field
        // switched off by a constant `@skip`/`@include`): the planner refuses
        // an empty operation, and there is nothing to plan anyway.
        if only_typename && (!introspection.is_empty() || planned_items.is_empty()) {
            let prepared = Prepared {
                plan: Arc::new(QueryPlan {
                    kind: "QueryPlan",
                    node: None,
                }),
                operation: Arc::new(normalized.operation),
                introspection: Arc::new(introspection),
                answer_size: Default::default(),
                weight,
            };
            return Ok(prepared);
        }
        let mut to_plan = normalized.operation.clone();
        to_plan.selection_set.items = planned_items;
        self.planner_runs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let plan = catch_unwind(AssertUnwindSafe(|| {
            self.planner
                .plan_from_normalized_operation(&to_plan, Default::default(), cancel)
        }))
        .map_err(|panic| PlanError::Planning(panic_message(panic)))?
        .map_err(|e| {
            // The deadline may be met deep in the walk and come back wrapped.
            let message = e.to_string();
            if cancel.bail_if_cancelled().is_err() || message.ends_with("timed out") {
                PlanError::TimedOut
            } else {
                PlanError::Planning(message)
            }
        })?;
        let prepared = Prepared {
            plan: Arc::new(plan),
            operation: Arc::new(normalized.operation),
            introspection: Arc::new(introspection),
            answer_size: Default::default(),
            weight,
        };
        if let Ok(mut plans) = self.plans.lock() {
            plans.room(weight);
            plans.entries.insert(key, prepared.clone());
        }
        Ok(prepared)
    }

    /// How many times the planner ran (normalized operations planned).
    pub fn planner_runs(&self) -> u64 {
        self.planner_runs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many plans are cached.
    pub fn cached_plans(&self) -> usize {
        self.plans.lock().map(|p| p.entries.len()).unwrap_or(0)
    }
}
