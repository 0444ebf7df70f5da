//! The fixture's four subgraphs (accounts, products, reviews with
//! `@provides`, inventory with `@requires`): their data, schemas and routers.

use bytes::Bytes;

use async_graphql::{
    ComplexObject, EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject,
};

const USERS: usize = 6;
const PRODUCTS: usize = 9;
const REVIEWS_PER_PRODUCT: usize = 3;

fn review_ids_of_product(p: usize) -> impl Iterator<Item = usize> {
    (0..REVIEWS_PER_PRODUCT).map(move |r| p * REVIEWS_PER_PRODUCT + r)
}

fn author_of_review(r: usize) -> usize {
    r % USERS
}

fn product_of_review(r: usize) -> usize {
    r / REVIEWS_PER_PRODUCT
}

mod accounts {
    use super::*;

    #[derive(SimpleObject)]
    #[graphql(cache_control(max_age = 60))]
    pub struct User {
        pub id: ID,
        pub name: String,
        pub username: String,
        pub birthday: i32,
    }

    pub fn user(i: usize) -> User {
        User {
            id: ID(format!("u{i}")),
            name: format!("User Number {i}"),
            username: format!("@user{i}"),
            birthday: 1_000_000 + i as i32,
        }
    }

    fn by_id(id: &ID) -> Option<User> {
        let i: usize = id.trim_start_matches('u').parse().ok()?;
        (i < USERS).then(|| user(i))
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn me(&self) -> User {
            user(0)
        }
        async fn users(&self) -> Vec<User> {
            (0..USERS).map(user).collect()
        }
        async fn user(&self, id: ID) -> Option<User> {
            by_id(&id)
        }
        #[graphql(entity)]
        async fn find_user_by_id(&self, id: ID) -> Option<User> {
            by_id(&id)
        }
    }
}

mod products {
    use super::*;

    #[derive(SimpleObject)]
    #[graphql(cache_control(max_age = 60))]
    pub struct Product {
        pub upc: String,
        pub name: String,
        pub price: i32,
        pub weight: i32,
    }

    pub fn product(i: usize) -> Product {
        Product {
            upc: format!("p{i}"),
            name: format!("Product number {i}, a fine thing"),
            price: 100 + i as i32 * 7,
            weight: 10 + i as i32 * 3,
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn top_products(&self, #[graphql(default = 5)] first: usize) -> Vec<Product> {
            (0..PRODUCTS.min(first)).map(product).collect()
        }
        #[graphql(entity)]
        async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
            let i: usize = upc.trim_start_matches('p').parse().ok()?;
            (i < PRODUCTS).then(|| product(i))
        }
    }
}

mod reviews {
    use super::*;

    pub struct Review(pub usize);

    #[Object(cache_control(max_age = 60))]
    impl Review {
        async fn id(&self) -> ID {
            ID(format!("r{}", self.0))
        }
        async fn body(&self) -> String {
            format!(
                "Review {} says this product is quite good, considering.",
                self.0
            )
        }
        #[graphql(provides = "username")]
        async fn author(&self) -> User {
            let u = author_of_review(self.0);
            User {
                id: ID(format!("u{u}")),
                username: format!("@user{u}"),
            }
        }
        async fn product(&self) -> Product {
            Product {
                upc: format!("p{}", product_of_review(self.0)),
            }
        }
    }

    #[derive(SimpleObject)]
    #[graphql(complex, cache_control(max_age = 60))]
    pub struct User {
        pub id: ID,
        #[graphql(external)]
        pub username: String,
    }

    #[ComplexObject]
    impl User {
        async fn reviews(&self) -> Vec<Review> {
            let u: usize = self
                .id
                .trim_start_matches('u')
                .parse()
                .unwrap_or(usize::MAX);
            (0..PRODUCTS * REVIEWS_PER_PRODUCT)
                .filter(|r| author_of_review(*r) == u)
                .map(Review)
                .collect()
        }
    }

    #[derive(SimpleObject)]
    #[graphql(complex, cache_control(max_age = 60))]
    pub struct Product {
        pub upc: String,
    }

    #[ComplexObject]
    impl Product {
        async fn reviews(&self) -> Vec<Review> {
            let p: usize = self
                .upc
                .trim_start_matches('p')
                .parse()
                .unwrap_or(usize::MAX);
            if p >= PRODUCTS {
                return Vec::new();
            }
            review_ids_of_product(p).map(Review).collect()
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn find_user_by_id(&self, id: ID) -> User {
            let u: usize = id.trim_start_matches('u').parse().unwrap_or(0);
            User {
                id,
                username: format!("@user{u}"),
            }
        }
        #[graphql(entity)]
        async fn find_product_by_upc(&self, upc: String) -> Product {
            Product { upc }
        }
    }
}

mod inventory {
    use super::*;

    #[derive(SimpleObject)]
    #[graphql(complex, cache_control(max_age = 60))]
    pub struct Product {
        pub upc: String,
        #[graphql(external)]
        pub price: Option<i32>,
        #[graphql(external)]
        pub weight: Option<i32>,
    }

    #[ComplexObject]
    impl Product {
        async fn in_stock(&self) -> bool {
            !self.upc.ends_with('3')
        }
        #[graphql(requires = "price weight")]
        async fn shipping_estimate(&self) -> Option<i32> {
            let (price, weight) = (self.price?, self.weight?);
            // Free for expensive things, else half a unit per weight.
            Some(if price > 1000 { 0 } else { weight / 2 })
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn find_product_by_upc(
            &self,
            #[graphql(key)] upc: String,
            price: Option<i32>,
            weight: Option<i32>,
        ) -> Product {
            Product { upc, price, weight }
        }
    }
}

fn sdl<Q, M, S>(schema: &Schema<Q, M, S>) -> String
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    schema.sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

pub(crate) fn fixture() -> Vec<(&'static str, String, axum::Router)> {
    fn app<Q, M, S>(schema: Schema<Q, M, S>) -> (String, axum::Router)
    where
        Q: async_graphql::ObjectType + 'static,
        M: async_graphql::ObjectType + 'static,
        S: async_graphql::SubscriptionType + 'static,
    {
        let sdl = sdl(&schema);
        let router = axum::Router::new().route(
            "/graphql",
            axum::routing::post(move |body: Bytes| {
                let schema = schema.clone();
                async move {
                    let response = match serde_json::from_slice::<async_graphql::Request>(&body) {
                        Ok(request) => schema.execute(request).await,
                        Err(e) => async_graphql::Response::from_errors(vec![
                            async_graphql::ServerError::new(e.to_string(), None),
                        ]),
                    };
                    // The fields' cache hints, as async-graphql-axum sends them
                    // (the entity cache's gateway keeps what they allow).
                    let mut headers = axum::http::HeaderMap::new();
                    if response.is_ok()
                        && let Some(value) = response.cache_control.value()
                    {
                        headers.insert("cache-control", value.parse().unwrap());
                    }
                    (headers, axum::Json(response))
                }
            }),
        );
        (sdl, router)
    }
    let (a_sdl, a) = app(
        Schema::build(accounts::Query, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    );
    let (p_sdl, p) = app(
        Schema::build(products::Query, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    );
    let (r_sdl, r) = app(
        Schema::build(reviews::Query, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    );
    let (i_sdl, i) = app(
        Schema::build(inventory::Query, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    );
    vec![
        ("accounts", a_sdl, a),
        ("products", p_sdl, p),
        ("reviews", r_sdl, r),
        ("inventory", i_sdl, i),
    ]
}
