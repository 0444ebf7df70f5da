//! Response paths: where in the response tree a flatten node's objects are
//! ([`targets`]), and [`Paths`], the distinct paths of one entity fetch kept
//! once each.

use hive_router_query_planner::planner::plan_nodes::FlattenNodePathSegment;
use serde_json::Value as Json;

use crate::execution::projection::Shapes;
use crate::value::Value;

/// One step of a response path: an object key (borrowed from the plan, so
/// paths cost no string copies) or a list index.
#[derive(Clone, Copy, Debug, Eq)]
pub(super) enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

impl PartialEq for Seg<'_> {
    /// Keys borrowed from the same place in the plan are the same string:
    /// the merge walk compares paths made by the same walk, so that is the
    /// usual answer, found without reading the bytes.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Seg::Key(a), Seg::Key(b)) => {
                std::ptr::eq(*a, *b) || crate::value::key_eq(a.as_bytes(), b.as_bytes())
            }
            (Seg::Index(a), Seg::Index(b)) => a == b,
            _ => false,
        }
    }
}

impl Seg<'_> {
    pub(super) fn to_json(self) -> Json {
        match self {
            Seg::Key(k) => Json::String(k.to_owned()),
            Seg::Index(i) => Json::from(i),
        }
    }
}

/// A concrete position in the response: object keys and list indexes.
pub(super) type ResponsePath<'p> = Vec<Seg<'p>>;

pub(super) fn path_json(path: &[Seg<'_>]) -> Vec<Json> {
    path.iter().map(|s| s.to_json()).collect()
}

/// Calls `visit` with each object a flatten path designates in `data`, in
/// document order, and with its concrete path (`at` is where the walk starts).
pub(super) fn walk_targets<'p>(
    types: &Shapes,
    value: &mut Value,
    rest: &'p [FlattenNodePathSegment],
    at: &mut ResponsePath<'p>,
    visit: &mut dyn FnMut(&[Seg<'p>], &mut Value),
) {
    walk_hinted(types, value, rest, &mut vec![0; rest.len()], at, visit)
}

/// [`walk_targets`], with where each of `rest`'s keys was last found (`hints`
/// goes along with `rest`): every object one segment reaches is of the same
/// type, its keys in the same order.
pub(super) fn walk_hinted<'p>(
    types: &Shapes,
    value: &mut Value,
    rest: &'p [FlattenNodePathSegment],
    hints: &mut [u32],
    at: &mut ResponsePath<'p>,
    visit: &mut dyn FnMut(&[Seg<'p>], &mut Value),
) {
    match (rest.first(), &mut *value) {
        (_, Value::Null) => {}
        (_, Value::Array(items)) => {
            // Lists are walked element by element whether or not the path says `@`.
            let (rest, hints) = if matches!(rest.first(), Some(FlattenNodePathSegment::List)) {
                (&rest[1..], &mut hints[1..])
            } else {
                (rest, hints)
            };
            for (i, item) in items.iter_mut().enumerate() {
                at.push(Seg::Index(i));
                walk_hinted(types, item, rest, hints, at, visit);
                at.pop();
            }
        }
        (None, Value::Object(_)) => visit(at, value),
        (Some(FlattenNodePathSegment::Field(key)), Value::Object(map)) => {
            let (hint, hints) = hints.split_first_mut().expect("a hint per segment");
            if let Some(child) = map.get_mut_hinted(key, hint) {
                at.push(Seg::Key(key));
                walk_hinted(types, child, &rest[1..], hints, at, visit);
                at.pop();
            }
        }
        (Some(FlattenNodePathSegment::TypeCondition(conditions)), Value::Object(map)) => {
            let matches = map
                .get("__typename")
                .and_then(Value::as_str)
                .is_none_or(|t| conditions.iter().any(|c| types.applies(c, t)));
            if matches {
                walk_hinted(types, value, &rest[1..], &mut hints[1..], at, visit);
            }
        }
        (Some(FlattenNodePathSegment::List), Value::Object(_)) => {
            walk_hinted(types, value, &rest[1..], &mut hints[1..], at, visit)
        }
        _ => {}
    }
}

/// The concrete paths of the objects a flatten path designates in `data`.
pub(super) fn targets<'p>(
    data: &mut Value,
    path: &'p [FlattenNodePathSegment],
    types: &Shapes,
) -> Vec<ResponsePath<'p>> {
    let mut out = Vec::new();
    walk_targets(types, data, path, &mut Vec::new(), &mut |at, _| {
        out.push(at.to_vec())
    });
    out
}

pub(super) fn at_path_mut<'v>(data: &'v mut Value, path: &[Seg<'_>]) -> Option<&'v mut Value> {
    path.iter().try_fold(data, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k),
        Seg::Index(i) => v.item_mut(*i),
    })
}

/// A path in [`Paths`].
pub(super) type PathId = u32;

/// The root of [`Paths`]: the empty path.
pub(super) const ROOT: PathId = PathId::MAX;

/// Response paths stored as a tree: each node is one segment and its
/// parent. The objects a flatten path meets share all but their last few
/// segments (`users.3.reviews.0.product` and `users.3.reviews.1.product`),
/// so a path costs a node or two, not a copy of every segment.
#[derive(Debug, Default)]
pub(super) struct Paths<'p> {
    pub(super) nodes: Vec<(PathId, Seg<'p>)>,
    /// The nodes of the path added last, root first: where the next one
    /// branches off.
    pub(super) last: Vec<PathId>,
}

impl<'p> Paths<'p> {
    pub(super) fn add(&mut self, at: &[Seg<'p>]) -> PathId {
        let shared = self
            .last
            .iter()
            .zip(at)
            .take_while(|&(&id, seg)| self.nodes[id as usize].1 == *seg)
            .count();
        self.last.truncate(shared);
        for seg in &at[shared..] {
            let parent = self.last.last().copied().unwrap_or(ROOT);
            self.nodes.push((parent, *seg));
            self.last.push((self.nodes.len() - 1) as PathId);
        }
        self.last.last().copied().unwrap_or(ROOT)
    }

    /// Whether the path `id` is `at`.
    pub(super) fn is(&self, mut id: PathId, at: &[Seg<'_>]) -> bool {
        for seg in at.iter().rev() {
            let Some(&(parent, own)) = self.nodes.get(id as usize) else {
                return false;
            };
            if own != *seg {
                return false;
            }
            id = parent;
        }
        id == ROOT
    }

    pub(super) fn path(&self, mut id: PathId) -> ResponsePath<'p> {
        let mut path = Vec::new();
        while let Some(&(parent, seg)) = self.nodes.get(id as usize) {
            path.push(seg);
            id = parent;
        }
        path.reverse();
        path
    }
}
