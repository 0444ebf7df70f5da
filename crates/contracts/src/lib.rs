//! The internal RPC contracts of `schema/proto`, compiled. Servers implement
//! the generated traits; callers use the generated clients.

/// The inventory subgraph's stock API (`grocery.inventory.v1`).
pub mod inventory {
    tonic::include_proto!("grocery.inventory.v1");
}
