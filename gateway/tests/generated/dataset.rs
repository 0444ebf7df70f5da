//! The data both the federated stubs and the monolithic reference serve: rows
//! and one function per computed field, so the two cannot drift. Nothing here
//! knows GraphQL; the stubs and the reference wrap these in their own types.
//!
//! The rows are chosen to exercise the gateway: nullable fields that are
//! sometimes null, lists with null items, fields that fail (nullable ones,
//! and non-null ones whose error nulls the nearest nullable parent), and
//! entities referenced from several subgraphs.

/// A product category (the `Category` enum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Fruit,
    Dairy,
    Bakery,
}

/// A product, as its owner (`products`) knows it.
pub struct ProductRow {
    pub sku: &'static str,
    pub name: &'static str,
    pub price: Option<i32>,
    pub category: Category,
    pub tags: &'static [&'static str],
    pub description: Option<&'static str>,
    pub weight: i32,
}

/// Products in catalogue order.
pub const PRODUCTS: [ProductRow; 6] = [
    ProductRow {
        sku: "APPLE",
        name: "Apple",
        price: Some(120),
        category: Category::Fruit,
        tags: &["red", "fresh"],
        description: Some("Crisp"),
        weight: 200,
    },
    ProductRow {
        sku: "BANANA",
        name: "Banana",
        price: Some(90),
        category: Category::Fruit,
        tags: &["yellow"],
        description: None,
        weight: 150,
    },
    ProductRow {
        sku: "MILK",
        name: "Milk",
        price: Some(110),
        category: Category::Dairy,
        tags: &["fresh", "cold"],
        description: Some("Whole milk"),
        weight: 1000,
    },
    ProductRow {
        sku: "CHEESE",
        name: "Cheese",
        price: None,
        category: Category::Dairy,
        tags: &[],
        description: Some("Aged"),
        weight: 300,
    },
    ProductRow {
        sku: "BREAD",
        name: "Bread",
        price: Some(250),
        category: Category::Bakery,
        tags: &["fresh"],
        description: None,
        weight: 500,
    },
    ProductRow {
        sku: "CROISSANT",
        name: "Croissant",
        price: Some(180),
        category: Category::Bakery,
        tags: &["butter"],
        description: Some("Flaky"),
        weight: 80,
    },
];

/// A bundle of products (not an entity: `products` alone serves it).
pub struct BundleRow {
    pub id: &'static str,
    pub name: &'static str,
    pub price: Option<i32>,
    pub skus: &'static [&'static str],
}

/// Bundles in catalogue order.
pub const BUNDLES: [BundleRow; 2] = [
    BundleRow {
        id: "B1",
        name: "Breakfast",
        price: Some(330),
        skus: &["BREAD", "MILK"],
    },
    BundleRow {
        id: "B2",
        name: "Fruit bowl",
        price: None,
        skus: &["APPLE", "BANANA"],
    },
];

/// A user, as its owner (`accounts`) knows it.
pub struct UserRow {
    pub id: &'static str,
    pub name: &'static str,
    pub email: Option<&'static str>,
    pub friends: &'static [&'static str],
    pub favorite: Option<&'static str>,
}

/// Users in id order.
pub const USERS: [UserRow; 4] = [
    UserRow {
        id: "u1",
        name: "Ada",
        email: Some("ada@example.com"),
        friends: &["u2", "u3"],
        favorite: Some("APPLE"),
    },
    UserRow {
        id: "u2",
        name: "Bob",
        email: None,
        friends: &["u1"],
        favorite: None,
    },
    UserRow {
        id: "u3",
        name: "Cy",
        email: Some("cy@example.com"),
        friends: &["u1", "u2", "u4"],
        favorite: Some("CHEESE"),
    },
    UserRow {
        id: "u4",
        name: "Dee",
        email: None,
        friends: &[],
        favorite: Some("BREAD"),
    },
];

/// A review, owned by `reviews`.
pub struct ReviewRow {
    pub id: &'static str,
    pub sku: &'static str,
    pub author: &'static str,
    pub rating: i32,
    pub body: &'static str,
}

/// Reviews in id order.
pub const REVIEWS: [ReviewRow; 6] = [
    ReviewRow {
        id: "r1",
        sku: "APPLE",
        author: "u1",
        rating: 5,
        body: "Crisp",
    },
    ReviewRow {
        id: "r2",
        sku: "APPLE",
        author: "u2",
        rating: 2,
        body: "Bruised",
    },
    ReviewRow {
        id: "r3",
        sku: "MILK",
        author: "u3",
        rating: 4,
        body: "Creamy",
    },
    ReviewRow {
        id: "r4",
        sku: "CHEESE",
        author: "u1",
        rating: 3,
        body: "Sharp",
    },
    ReviewRow {
        id: "r5",
        sku: "BREAD",
        author: "u4",
        rating: 5,
        body: "Warm",
    },
    ReviewRow {
        id: "r6",
        sku: "CROISSANT",
        author: "u3",
        rating: 1,
        body: "Stale",
    },
];

/// Strings worth passing as arguments: every key, tag and name, and a miss.
pub const VOCABULARY: &[&str] = &[
    "APPLE",
    "BANANA",
    "MILK",
    "CHEESE",
    "BREAD",
    "CROISSANT",
    "B1",
    "u1",
    "u2",
    "u3",
    "u4",
    "r1",
    "r2",
    "r4",
    "fresh",
    "red",
    "cold",
    "NOPE",
    "",
];

/// The product with `sku`, if any.
pub fn product(sku: &str) -> Option<&'static ProductRow> {
    PRODUCTS.iter().find(|p| p.sku == sku)
}

/// What `products(first, filter)` lists; a negative `first` lists nothing.
pub fn products(first: i32, filter: &Filter) -> Vec<&'static ProductRow> {
    PRODUCTS
        .iter()
        .filter(|p| filter.category.is_none_or(|c| p.category == c))
        .filter(|p| {
            filter
                .min_price
                .is_none_or(|min| p.price.is_some_and(|price| price >= min))
        })
        .filter(|p| {
            filter
                .tags
                .as_ref()
                .is_none_or(|tags| tags.iter().all(|t| p.tags.contains(&t.as_str())))
        })
        .take(first.max(0) as usize)
        .collect()
}

/// The `ProductFilter` input.
#[derive(Default)]
pub struct Filter {
    pub category: Option<Category>,
    pub min_price: Option<i32>,
    pub tags: Option<Vec<String>>,
}

/// The bundle with `id`, if any.
pub fn bundle(id: &str) -> Option<&'static BundleRow> {
    BUNDLES.iter().find(|b| b.id == id)
}

/// One slot of `listings`: a product, a bundle, or a hole (null).
pub enum Listing {
    Product(&'static ProductRow),
    Bundle(&'static BundleRow),
    Hole,
}

/// `listings(category)`: the category's products; with no category, every
/// product, a null slot, then the bundles.
pub fn listings(category: Option<Category>) -> Vec<Listing> {
    let products = PRODUCTS
        .iter()
        .filter(|p| category.is_none_or(|c| p.category == c))
        .map(Listing::Product);
    match category {
        Some(_) => products.collect(),
        None => products
            .chain([Listing::Hole])
            .chain(BUNDLES.iter().map(Listing::Bundle))
            .collect(),
    }
}

/// The user with `id`, if any.
pub fn user(id: &str) -> Option<&'static UserRow> {
    USERS.iter().find(|u| u.id == id)
}

/// `friends(first)`: the first `first` friends (all when absent, none when negative).
pub fn friends(user: &UserRow, first: Option<i32>) -> Vec<&'static UserRow> {
    let n = first.map_or(usize::MAX, |n| n.max(0) as usize);
    user.friends
        .iter()
        .filter_map(|id| self::user(id))
        .take(n)
        .collect()
}

/// The review with `id`, if any.
pub fn review(id: &str) -> Option<&'static ReviewRow> {
    REVIEWS.iter().find(|r| r.id == id)
}

/// `topReviews(first)`: best rated first, ties by id.
pub fn top_reviews(first: i32) -> Vec<&'static ReviewRow> {
    let mut reviews: Vec<_> = REVIEWS.iter().collect();
    reviews.sort_by(|a, b| b.rating.cmp(&a.rating).then(a.id.cmp(b.id)));
    reviews.truncate(first.max(0) as usize);
    reviews
}

/// A product's reviews rated at least `min_rating`.
pub fn product_reviews(sku: &str, min_rating: i32) -> Vec<&'static ReviewRow> {
    REVIEWS
        .iter()
        .filter(|r| r.sku == sku && r.rating >= min_rating)
        .collect()
}

/// A user's reviews.
pub fn user_reviews(id: &str) -> Vec<&'static ReviewRow> {
    REVIEWS.iter().filter(|r| r.author == id).collect()
}

/// The mean rating of a product; null with no reviews.
pub fn average_rating(sku: &str) -> Option<f64> {
    let ratings: Vec<i32> = product_reviews(sku, i32::MIN)
        .iter()
        .map(|r| r.rating)
        .collect();
    (!ratings.is_empty()).then(|| f64::from(ratings.iter().sum::<i32>()) / ratings.len() as f64)
}

/// `reviewCount` (non-null): fails for CHEESE, so the product is nulled.
pub fn review_count(sku: &str) -> Result<i32, String> {
    if sku == "CHEESE" {
        return Err("review count unavailable".into());
    }
    Ok(product_reviews(sku, i32::MIN).len() as i32)
}

/// `flagged` (nullable): fails for r2, unknown (null) for r4.
pub fn flagged(review: &ReviewRow) -> Result<Option<bool>, String> {
    match review.id {
        "r2" => Err("moderation unavailable".into()),
        "r4" => Ok(None),
        id => Ok(Some(id == "r6")),
    }
}

/// `verified` (non-null): fails for r4, so the review is nulled.
pub fn verified(review: &ReviewRow) -> Result<bool, String> {
    match review.id {
        "r4" => Err("verification unavailable".into()),
        id => Ok(id != "r2"),
    }
}

/// Units in stock (owned by `inventory`).
pub fn stock(sku: &str) -> i32 {
    match sku {
        "APPLE" => 10,
        "MILK" => 5,
        "CHEESE" => 2,
        "CROISSANT" => 12,
        _ => 0,
    }
}

/// Where a product is kept: a nullable list with null items.
pub fn warehouses(sku: &str) -> Option<Vec<Option<&'static str>>> {
    match sku {
        "APPLE" => Some(vec![Some("north"), None]),
        "MILK" => Some(vec![Some("cold")]),
        "CHEESE" => None,
        _ => Some(vec![]),
    }
}

/// `restockDate` (nullable): fails for BANANA, null when nothing is planned.
pub fn restock_date(sku: &str) -> Result<Option<&'static str>, String> {
    match sku {
        "BANANA" => Err("supplier unavailable".into()),
        "BREAD" => Ok(Some("2026-03-01")),
        "MILK" => Ok(Some("2026-02-20")),
        _ => Ok(None),
    }
}

/// Days to ship, from the weight (`inventory` requires it from `products`).
pub fn shipping_estimate(weight: i32) -> Option<i32> {
    (weight <= 500).then_some(weight / 100 + 1)
}
