//! The library: an interface and a union over Book and Film, with fields
//! from another subgraph (section 2).

use crate::*;

#[derive(SimpleObject, Clone)]
struct Book {
    id: ID,
    title: String,
    pages: i32,
}

#[derive(SimpleObject, Clone)]
struct Film {
    id: ID,
    title: String,
    minutes: i32,
}

#[derive(Interface, Clone)]
#[graphql(field(name = "id", ty = "&ID"), field(name = "title", ty = "&String"))]
enum Item {
    Book(Book),
    Film(Film),
}

#[derive(Union, Clone)]
enum Found {
    Book(Book),
    Film(Film),
}

fn library() -> Vec<Item> {
    let book = |id: &str, title: &str, pages| {
        Item::Book(Book {
            id: ID(id.into()),
            title: title.into(),
            pages,
        })
    };
    vec![
        book("b1", "Dune", 412),
        Item::Film(Film {
            id: ID("f1".into()),
            title: "Alien".into(),
            minutes: 117,
        }),
        book("b2", "Emma", 320),
    ]
}

struct CQuery;

#[Object(name = "Query")]
impl CQuery {
    async fn items(&self) -> Vec<Item> {
        library()
    }

    /// Books and films whose title contains `term`, ignoring case.
    async fn search(&self, term: String) -> Vec<Found> {
        library()
            .into_iter()
            .filter_map(|item| match item {
                Item::Book(b) if b.title.to_lowercase().contains(&term) => Some(Found::Book(b)),
                Item::Film(f) if f.title.to_lowercase().contains(&term) => Some(Found::Film(f)),
                _ => None,
            })
            .collect()
    }

    #[graphql(entity)]
    async fn book_by_id(&self, id: ID) -> Option<Book> {
        library().into_iter().find_map(|i| match i {
            Item::Book(b) if b.id == id => Some(b),
            _ => None,
        })
    }

    #[graphql(entity)]
    async fn film_by_id(&self, id: ID) -> Option<Film> {
        library().into_iter().find_map(|i| match i {
            Item::Film(f) if f.id == id => Some(f),
            _ => None,
        })
    }
}

#[derive(SimpleObject)]
struct Rating {
    stars: i32,
    votes: i32,
}

fn rating(id: &str) -> Rating {
    let (stars, votes) = match id {
        "b1" => (5, 10),
        "f1" => (4, 20),
        _ => (3, 30),
    };
    Rating { stars, votes }
}

struct RatedBook {
    id: ID,
}

#[Object(name = "Book")]
impl RatedBook {
    async fn id(&self) -> &ID {
        &self.id
    }

    async fn rating(&self) -> Rating {
        rating(&self.id)
    }
}

struct RatedFilm {
    id: ID,
}

#[Object(name = "Film")]
impl RatedFilm {
    async fn id(&self) -> &ID {
        &self.id
    }

    async fn rating(&self) -> Rating {
        rating(&self.id)
    }
}

struct RatingsQuery;

#[Object(name = "Query")]
impl RatingsQuery {
    #[graphql(entity)]
    async fn book_by_id(&self, id: ID) -> RatedBook {
        RatedBook { id }
    }

    #[graphql(entity)]
    async fn film_by_id(&self, id: ID) -> RatedFilm {
        RatedFilm { id }
    }
}

// 2. Interfaces and unions.

#[tokio::test]
async fn interfaces_and_unions_get_fields_from_other_subgraphs() {
    let catalog = support::serve(
        "catalog",
        Schema::build(CQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await;
    let ratings = support::serve(
        "ratings",
        Schema::build(RatingsQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await;
    let gw = support::gateway(&support::supergraph(&[&catalog, &ratings]));
    let query = r#"
      query Library {
        __typename
        items {
          __typename
          id
          ...ItemTitle
          ... on Book { pages rating { __typename stars } }
          ... on Film { minutes rating { votes } }
        }
        search(term: "e") {
          __typename
          ... on Item { id }
          ... on Book { title rating { stars } }
          ...FilmTitle
        }
      }
      fragment ItemTitle on Item { title }
      fragment FilmTitle on Film { title }
    "#;
    let (body, _) = support::post(&gw, query, json!({}), &[]).await;
    assert_eq!(
        body,
        json!({ "data": {
            "__typename": "Query",
            "items": [
                { "__typename": "Book", "id": "b1", "title": "Dune", "pages": 412, "rating": { "__typename": "Rating", "stars": 5 } },
                { "__typename": "Film", "id": "f1", "title": "Alien", "minutes": 117, "rating": { "votes": 20 } },
                { "__typename": "Book", "id": "b2", "title": "Emma", "pages": 320, "rating": { "__typename": "Rating", "stars": 3 } },
            ],
            "search": [
                { "__typename": "Book", "id": "b1", "title": "Dune", "rating": { "stars": 5 } },
                { "__typename": "Film", "id": "f1", "title": "Alien" },
                { "__typename": "Book", "id": "b2", "title": "Emma", "rating": { "stars": 3 } },
            ],
        } })
    );
    // Books and films from both root fields: each asked for once.
    let mut asked: Vec<Value> = entity_requests(&ratings).concat();
    asked.sort_by_key(Value::to_string);
    asked.dedup();
    assert_eq!(
        asked,
        [
            json!({ "__typename": "Book", "id": "b1" }),
            json!({ "__typename": "Book", "id": "b2" }),
            json!({ "__typename": "Film", "id": "f1" }),
        ]
    );
}
