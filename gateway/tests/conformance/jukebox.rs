//! The jukebox: an entity interface and an `@interfaceObject` that adds
//! fields to every implementation (section 3).

use crate::*;

#[derive(SimpleObject, Clone)]
struct Song {
    id: ID,
    title: String,
    artist: String,
}

#[derive(SimpleObject, Clone)]
struct Podcast {
    id: ID,
    title: String,
    host: String,
}

#[derive(Interface, Clone)]
#[graphql(field(name = "id", ty = "&ID"), field(name = "title", ty = "&String"))]
enum Media {
    Song(Song),
    Podcast(Podcast),
}

fn media() -> Vec<Media> {
    vec![
        Media::Podcast(Podcast {
            id: ID("c1".into()),
            title: "Talk".into(),
            host: "Bob".into(),
        }),
        Media::Song(Song {
            id: ID("s1".into()),
            title: "Blue".into(),
            artist: "Ann".into(),
        }),
    ]
}

fn media_by_id(id: &ID) -> Option<Media> {
    media().into_iter().find(|m| match m {
        Media::Song(s) => &s.id == id,
        Media::Podcast(p) => &p.id == id,
    })
}

struct MediaQuery;

#[Object(name = "Query")]
impl MediaQuery {
    async fn media(&self) -> Vec<Media> {
        media()
    }

    #[graphql(entity)]
    async fn media_by_id(&self, id: ID) -> Option<Media> {
        media_by_id(&id)
    }

    #[graphql(entity)]
    async fn song_by_id(&self, id: ID) -> Option<Song> {
        match media_by_id(&id) {
            Some(Media::Song(s)) => Some(s),
            _ => None,
        }
    }

    #[graphql(entity)]
    async fn podcast_by_id(&self, id: ID) -> Option<Podcast> {
        match media_by_id(&id) {
            Some(Media::Podcast(p)) => Some(p),
            _ => None,
        }
    }
}

/// `Media` as the plays subgraph sees it: an object standing for the interface.
#[derive(SimpleObject)]
#[graphql(name = "Media", interface_object)]
struct PlayedMedia {
    id: ID,
    plays: i32,
}

fn played(id: ID) -> PlayedMedia {
    let plays = match id.as_str() {
        "s1" => 100,
        _ => 7,
    };
    PlayedMedia { id, plays }
}

struct PlaysQuery;

#[Object(name = "Query")]
impl PlaysQuery {
    async fn most_played(&self) -> Vec<PlayedMedia> {
        vec![played(ID("s1".into())), played(ID("c1".into()))]
    }

    #[graphql(entity)]
    async fn media_by_id(&self, id: ID) -> PlayedMedia {
        played(id)
    }
}

// 3. @interfaceObject.

#[tokio::test]
async fn interface_objects_add_fields_to_every_implementation() {
    let media = support::serve(
        "media",
        Schema::build(MediaQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await;
    let plays = support::serve(
        "plays",
        Schema::build(PlaysQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await;
    let gw = support::gateway(&support::supergraph(&[&media, &plays]));

    // From the interface's subgraph to the interface object's.
    let (body, _) = support::post(
        &gw,
        "{ media { __typename id title plays ... on Song { artist } ... on Podcast { host } } }",
        json!({}),
        &[],
    )
    .await;
    assert_eq!(
        body,
        json!({ "data": { "media": [
            { "__typename": "Podcast", "id": "c1", "title": "Talk", "plays": 7, "host": "Bob" },
            { "__typename": "Song", "id": "s1", "title": "Blue", "plays": 100, "artist": "Ann" },
        ] } })
    );
    assert_eq!(
        entity_requests(&plays),
        [[
            json!({ "__typename": "Media", "id": "c1" }),
            json!({ "__typename": "Media", "id": "s1" }),
        ]],
        "the interface object is asked under the interface's name"
    );
    plays.forget();

    // From the interface object: the concrete type comes from the interface's subgraph.
    media.forget();
    let (body, _) = support::post(
        &gw,
        "{ mostPlayed { __typename id plays title ... on Podcast { host } } }",
        json!({}),
        &[],
    )
    .await;
    assert_eq!(
        body,
        json!({ "data": { "mostPlayed": [
            { "__typename": "Song", "id": "s1", "plays": 100, "title": "Blue" },
            { "__typename": "Podcast", "id": "c1", "plays": 7, "title": "Talk", "host": "Bob" },
        ] } })
    );
    assert_eq!(plays.requests().len(), 1);
    assert_eq!(
        entity_requests(&media),
        [[
            json!({ "__typename": "Media", "id": "s1" }),
            json!({ "__typename": "Media", "id": "c1" }),
        ]],
        "the interface's subgraph tells the concrete types, in one request"
    );

    // Fragments on a concrete type apply by the type the interface's subgraph told.
    let (body, _) = support::post(
        &gw,
        "{ mostPlayed { ... on Song { artist } plays } media { ... on Song { id } } }",
        json!({}),
        &[],
    )
    .await;
    assert_eq!(
        body,
        json!({ "data": {
            "mostPlayed": [{ "artist": "Ann", "plays": 100 }, { "plays": 7 }],
            "media": [{}, { "id": "s1" }],
        } })
    );
}
