//! The logistics subgraph's GraphQL surface: shipments (here) and restocks
//! ([`restock`]), merged into one Query and one Mutation. Resolvers are thin.

mod shipment;

use async_graphql::{EmptySubscription, MergedObject};

pub use self::shipment::*;

// Every query field of logistics (one part per module).
#[derive(MergedObject, Default)]
pub struct Query(ShipmentQuery);

// Every mutation of logistics.
#[derive(MergedObject, Default)]
pub struct Mutation(ShipmentMutation);

pub type LogisticsSchema = async_graphql::Schema<Query, Mutation, EmptySubscription>;
