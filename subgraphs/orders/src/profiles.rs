//! The customer's contact and addresses, for the snapshot a confirmed order
//! keeps when the call does not give them.
//!
//! Users owns profiles, and shows them only to the user and admins; orders
//! resolves the `User` entity at users' GraphQL endpoint presenting the
//! caller's own access token, so users decides what orders may see. Best
//! effort: a users subgraph that does not answer leaves the snapshot to what
//! the call gave, and never fails a checkout.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::{confirm::Customer, entities::EntityClient};

/// How long a lookup may take before the snapshot goes without the profile.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

const SELECTION: &str = "... on User { email phone \
    shippingAddress { line1 line2 city region postalCode country } \
    billingAddress { line1 line2 city region postalCode country } }";

/// Looks profiles up at users.
#[derive(Clone)]
pub struct Profiles(EntityClient);

impl Profiles {
    /// Profiles from users' GraphQL endpoint at `url`.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(Self(EntityClient::new("USERS_URL", url, LOOKUP_TIMEOUT)?))
    }

    /// What users shows the holder of `bearer` of `customer`; `None` when
    /// users does not answer or shows nothing.
    pub async fn lookup(&self, customer: Uuid, bearer: &str) -> Option<Customer> {
        let representation = json!({ "__typename": "User", "id": customer });
        match self
            .0
            .resolve(SELECTION, vec![representation], Some(bearer))
            .await
        {
            Ok(mut users) => match users.pop().map(serde_json::from_value::<Customer>) {
                Some(Ok(profile)) => Some(profile),
                Some(Err(err)) => {
                    tracing::warn!(%customer, error = %err, "users answered a profile orders cannot read");
                    None
                }
                None => None,
            },
            Err(err) => {
                tracing::warn!(%customer, error = format!("{err:#}"), "customer profile unavailable");
                None
            }
        }
    }
}

impl Customer {
    /// This snapshot with what it lacks taken from `profile`. A billing
    /// address given with the call or kept in the profile wins over the
    /// shipping address standing in for it.
    pub fn completed_from(self, profile: Customer) -> Customer {
        let shipping_address = self.shipping_address.or(profile.shipping_address);
        Customer {
            email: self.email.or(profile.email),
            phone: self.phone.or(profile.phone),
            billing_address: self
                .billing_address
                .or(profile.billing_address)
                .or_else(|| shipping_address.clone()),
            shipping_address,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confirm::Address;

    fn address(city: &str) -> Address {
        Address {
            line1: "1 Way".into(),
            city: city.into(),
            postal_code: "3000".into(),
            country: "CH".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_call_wins_and_the_profile_fills_the_gaps() {
        let call = Customer {
            email: Some("call@example.com".into()),
            shipping_address: Some(address("Bern")),
            ..Default::default()
        };
        let profile = Customer {
            email: Some("profile@example.com".into()),
            phone: Some("+41 79".into()),
            shipping_address: Some(address("Basel")),
            billing_address: Some(address("Zug")),
        };
        let merged = call.completed_from(profile);
        assert_eq!(merged.email.as_deref(), Some("call@example.com"));
        assert_eq!(merged.phone.as_deref(), Some("+41 79"));
        assert_eq!(merged.shipping_address.unwrap().city, "Bern");
        assert_eq!(merged.billing_address.unwrap().city, "Zug");
    }

    #[test]
    fn shipping_stands_in_for_a_missing_billing_address() {
        let profile = Customer {
            shipping_address: Some(address("Basel")),
            ..Default::default()
        };
        let merged = Customer::default().completed_from(profile);
        assert_eq!(merged.billing_address.unwrap().city, "Basel");
    }
}
