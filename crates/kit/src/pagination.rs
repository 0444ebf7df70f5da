//! Relay-style pagination helpers shared by every connection: opaque cursors
//! and a checked page size.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{ApiError, ApiResult};

/// The largest page a client may ask for.
pub const MAX_PAGE: i32 = 100;

/// One page of a keyset-paginated listing.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub total_count: i64,
}

impl<T> Page<T> {
    /// A page from rows fetched with `LIMIT first + 1`: the extra row, if it
    /// came, only says there is a next page.
    pub fn from_overfetch(mut items: Vec<T>, first: i64, total_count: i64) -> Self {
        let has_next_page = items.len() as i64 > first;
        items.truncate(first.max(0) as usize);
        Self {
            items,
            has_next_page,
            total_count,
        }
    }
}

/// An opaque cursor for a sort key.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// The sort key inside a cursor; `BAD_USER_INPUT` on anything we did not issue.
pub fn decode_cursor(cursor: &str) -> ApiResult<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ApiError::bad_input("after", "invalid cursor"))
}

/// `first` checked to lie in `0..=MAX_PAGE` (`default` when omitted).
pub fn page_size(first: Option<i32>, default: i32) -> ApiResult<i64> {
    let first = first.unwrap_or(default);
    if (0..=MAX_PAGE).contains(&first) {
        Ok(i64::from(first))
    } else {
        Err(ApiError::bad_input(
            "first",
            format!("first must be between 0 and {MAX_PAGE}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor("APPLE")).unwrap(), "APPLE");
        assert!(decode_cursor("!!").is_err());
        assert_eq!(page_size(None, 20).unwrap(), 20);
        assert!(page_size(Some(101), 20).is_err());
        assert!(page_size(Some(-1), 20).is_err());
        let page = Page::from_overfetch(vec![1, 2, 3], 2, 9);
        assert_eq!(
            (page.items, page.has_next_page, page.total_count),
            (vec![1, 2], true, 9)
        );
        assert!(!Page::from_overfetch(vec![1, 2], 2, 2).has_next_page);
    }
}
