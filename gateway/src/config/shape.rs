//! The shape of the configuration file, built from the declared variables'
//! keys ([`settings::Var::file`]): what the reader checks a file against
//! and what the JSON Schema describes, so neither keeps a list of its own.

use std::collections::BTreeMap;

use settings::{Kind, Var};

/// A node of the file's tree.
#[derive(Clone, Debug)]
pub(super) enum Shape {
    /// A mapping of these keys.
    Group(BTreeMap<&'static str, Shape>),
    /// A mapping of subgraph names, each a mapping of these keys.
    Each(BTreeMap<&'static str, Shape>),
    /// A value of `kind` for the variable `name`, declared by `row`.
    Leaf(Leaf),
}

/// A key that holds a value.
#[derive(Clone, Copy, Debug)]
pub(super) struct Leaf {
    pub name: &'static str,
    pub kind: Kind,
    pub row: &'static Var,
}

impl Shape {
    /// The root of the file every key of `tables` declares.
    ///
    /// # Panics
    /// When two declarations claim one key, or a row's keys do not pair
    /// with its names: declarations the tests check.
    pub fn of(tables: &[&'static [Var]]) -> Self {
        let mut root = BTreeMap::new();
        for row in tables.iter().flat_map(|t| t.iter()) {
            if row.file.is_empty() {
                continue;
            }
            assert_eq!(
                row.names.len(),
                row.file.len(),
                "{:?}: one file key per name",
                row.names
            );
            for (name, key) in row.names.iter().zip(row.file) {
                let segments: Vec<&'static str> = key.path.split('.').collect();
                let leaf = Leaf {
                    name,
                    kind: key.kind,
                    row,
                };
                insert(&mut root, &segments, leaf);
            }
        }
        Shape::Group(root)
    }
}

fn insert(map: &mut BTreeMap<&'static str, Shape>, segments: &[&'static str], leaf: Leaf) {
    match segments {
        [] => unreachable!("a key has a segment"),
        [last] => {
            let before = map.insert(*last, Shape::Leaf(leaf));
            assert!(before.is_none(), "{last}: declared twice");
        }
        [group, "*", rest @ ..] => {
            let each = map
                .entry(*group)
                .or_insert_with(|| Shape::Each(BTreeMap::new()));
            let Shape::Each(keys) = each else {
                panic!("{group}: both a group and a map of subgraphs")
            };
            insert(keys, rest, leaf);
        }
        [group, rest @ ..] => {
            let node = map
                .entry(*group)
                .or_insert_with(|| Shape::Group(BTreeMap::new()));
            let Shape::Group(keys) = node else {
                panic!("{group}: both a value and a group")
            };
            insert(keys, rest, leaf);
        }
    }
}
