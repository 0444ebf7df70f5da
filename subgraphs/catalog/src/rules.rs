//! The rules a product's fields obey: name, description, UPC, category,
//! image URLs and metadata. SKUs and barcode check digits have their own
//! modules ([`crate::sku`], [`crate::gtin`]).
//!
//! Each rule takes what the client sent and returns what is stored, or a
//! `BAD_USER_INPUT` naming the GraphQL input field.

use serde_json::Value;

use crate::{error::CatalogError, gtin::Gtin};

/// Longest product name, in characters.
pub const NAME_MAX: usize = 200;
/// Longest description, in characters.
pub const DESCRIPTION_MAX: usize = 5000;
/// Longest category, in characters.
pub const CATEGORY_MAX: usize = 100;
/// Most images a product may have.
pub const IMAGES_MAX: usize = 20;
/// Longest image URL, in bytes.
pub const IMAGE_URL_MAX: usize = 2048;
/// Largest metadata object, serialised as JSON, in bytes.
pub const METADATA_MAX: usize = 16 * 1024;

/// Trimmed, 1–200 characters, no control characters.
pub fn name(raw: &str) -> Result<String, CatalogError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(CatalogError::invalid("name", "name must not be empty"));
    }
    if name.chars().count() > NAME_MAX {
        return Err(CatalogError::invalid(
            "name",
            format!("name must be at most {NAME_MAX} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(CatalogError::invalid(
            "name",
            "name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Trimmed, at most 5000 characters; blank means none.
pub fn description(raw: &str) -> Result<Option<String>, CatalogError> {
    let description = raw.trim();
    if description.chars().count() > DESCRIPTION_MAX {
        return Err(CatalogError::invalid(
            "description",
            format!("description must be at most {DESCRIPTION_MAX} characters"),
        ));
    }
    Ok((!description.is_empty()).then(|| description.to_owned()))
}

/// A GTIN-12 or GTIN-13 with a correct check digit; blank means none.
pub fn upc(raw: &str) -> Result<Option<String>, CatalogError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    Ok(Some(Gtin::parse(raw)?.into()))
}

/// Trimmed, at most 100 characters; blank means none.
pub fn category(raw: &str) -> Result<Option<String>, CatalogError> {
    let category = raw.trim();
    if category.chars().count() > CATEGORY_MAX {
        return Err(CatalogError::invalid(
            "category",
            format!("category must be at most {CATEGORY_MAX} characters"),
        ));
    }
    if category.chars().any(char::is_control) {
        return Err(CatalogError::invalid(
            "category",
            "category must not contain control characters",
        ));
    }
    Ok((!category.is_empty()).then(|| category.to_owned()))
}

/// At most 20 absolute http(s) URLs, each at most 2048 bytes without whitespace.
pub fn image_urls(urls: Vec<String>) -> Result<Vec<String>, CatalogError> {
    if urls.len() > IMAGES_MAX {
        return Err(CatalogError::invalid(
            "imageUrls",
            format!("a product has at most {IMAGES_MAX} images"),
        ));
    }
    for url in &urls {
        check_image_url(url)?;
    }
    Ok(urls)
}

fn check_image_url(url: &str) -> Result<(), CatalogError> {
    let bad = |why: &str| {
        let shown: String = url.chars().take(80).collect();
        CatalogError::invalid("imageUrls", format!("{shown:?} {why}"))
    };
    if url.len() > IMAGE_URL_MAX {
        return Err(bad(&format!("is longer than {IMAGE_URL_MAX} bytes")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace"));
    }
    let rest = match url.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest
        }
        _ => return Err(bad("is not an absolute http or https URL")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_and_port.strip_prefix('[') {
        // An IPv6 literal: `[::1]:8080`.
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_and_port.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    Ok(())
}

/// A JSON object of at most 16 KiB.
pub fn metadata(value: Value) -> Result<Value, CatalogError> {
    if !value.is_object() {
        return Err(CatalogError::invalid(
            "metadata",
            "metadata must be a JSON object",
        ));
    }
    if value.to_string().len() > METADATA_MAX {
        return Err(CatalogError::invalid(
            "metadata",
            format!("metadata must be at most {METADATA_MAX} bytes as JSON"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(result: Result<impl std::fmt::Debug, CatalogError>) -> &'static str {
        match result {
            Err(CatalogError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Gala Apples ").unwrap(), "Gala Apples");
        assert_eq!(name(&"é".repeat(200)).unwrap().chars().count(), 200);
        assert_eq!(field(name("   ")), "name");
        assert_eq!(field(name(&"x".repeat(201))), "name");
        assert_eq!(field(name("tab\there")), "name");
    }

    #[test]
    fn blank_description_and_category_mean_none() {
        assert_eq!(description("  ").unwrap(), None);
        assert_eq!(description(" Crisp. ").unwrap().as_deref(), Some("Crisp."));
        assert_eq!(field(description(&"d".repeat(5001))), "description");
        assert_eq!(category(" ").unwrap(), None);
        assert_eq!(category(" fruit ").unwrap().as_deref(), Some("fruit"));
        assert_eq!(field(category(&"c".repeat(101))), "category");
    }

    #[test]
    fn image_urls_are_absolute_http_without_whitespace() {
        let ok = vec![
            "https://cdn.example.com/a.jpg".to_owned(),
            "HTTP://user@[::1]:8080/b.png?x=1".to_owned(),
        ];
        assert_eq!(image_urls(ok.clone()).unwrap(), ok);
        for bad in [
            "ftp://example.com/a.jpg",
            "/images/a.jpg",
            "https://",
            "https:///a.jpg",
            "https://example.com/a b.jpg",
            " https://example.com/a.jpg",
            "javascript:alert(1)",
        ] {
            assert_eq!(field(image_urls(vec![bad.into()])), "imageUrls", "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert_eq!(field(image_urls(vec![long])), "imageUrls");
        let many = vec!["https://example.com/a.jpg".to_owned(); 21];
        assert_eq!(field(image_urls(many)), "imageUrls");
    }

    #[test]
    fn metadata_is_a_small_object() {
        assert!(metadata(json!({ "origin": "NZ" })).is_ok());
        assert_eq!(field(metadata(json!([1, 2]))), "metadata");
        assert_eq!(field(metadata(json!("x"))), "metadata");
        assert_eq!(
            field(metadata(json!({ "blob": "x".repeat(16 * 1024) }))),
            "metadata"
        );
    }
}
