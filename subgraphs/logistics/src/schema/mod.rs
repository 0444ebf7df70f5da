//! The logistics subgraph's GraphQL surface: shipments ([`shipment`]) and
//! restocks ([`restock`]), merged into one Query and one Mutation. Resolvers
//! are thin.

mod restock;
mod shipment;

use async_graphql::{EmptySubscription, MergedObject};

pub use self::{restock::*, shipment::*};

// Every query field of logistics (one part per module).
#[derive(MergedObject, Default)]
pub struct Query(ShipmentQuery, RestockQuery);

// Every mutation of logistics.
#[derive(MergedObject, Default)]
pub struct Mutation(ShipmentMutation, RestockMutation);

pub type LogisticsSchema = async_graphql::Schema<Query, Mutation, EmptySubscription>;
