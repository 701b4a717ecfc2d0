//! Given/when/then for every category command, and the tree's invariants over random
//! command sequences.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::catalog::Slug;
use crate::testing::{given, given_no_history};
use crate::{Aggregate, DomainEvent};

use CategoryCommand as C;
use CategoryEvent as E;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x2000 + n)
}

fn slug(s: &str) -> Slug {
    Slug::parse(s).unwrap()
}

fn name(s: &str) -> CategoryName {
    CategoryName::parse(s).unwrap()
}

fn created(n: u128, parent: Option<u128>) -> CategoryEvent {
    E::CategoryCreated {
        category_id: id(n),
        name: name(&format!("Category {n}")),
        slug: slug(&format!("c{n}")),
        parent_id: parent.map(id),
        at: at(0),
    }
}

fn create(n: u128, slug_text: &str, parent: Option<u128>) -> CategoryCommand {
    C::CreateCategory {
        category_id: id(n),
        name: name(&format!("Category {n}")),
        slug: slug(slug_text),
        parent_id: parent.map(id),
        at: at(0),
    }
}

/// clothing(1) -> men(2) -> shirts(3); clothing(1) -> women(4); shoes(5).
fn tree() -> Vec<CategoryEvent> {
    vec![
        created(1, None),
        created(2, Some(1)),
        created(3, Some(2)),
        created(4, Some(1)),
        created(5, None),
    ]
}

fn move_to(n: u128, parent: Option<u128>) -> CategoryCommand {
    C::MoveCategory {
        category_id: id(n),
        new_parent_id: parent.map(id),
        at: at(5),
    }
}

/// A chain 0 -> 1 -> ... -> len-1.
fn chain(len: u128) -> Vec<CategoryEvent> {
    (0..len).map(|n| created(n, n.checked_sub(1))).collect()
}

// --- create -------------------------------------------------------------------------

#[test]
fn create_a_root_and_a_child() {
    let (events, tree) = given_no_history::<CategoryTree>()
        .when(create(1, "c1", None))
        .then_state();
    assert_eq!(events, vec![created(1, None)]);
    assert_eq!(tree.roots().count(), 1);
    let (events, tree) = given::<CategoryTree>([created(1, None)])
        .when(create(2, "c2", Some(1)))
        .then_state();
    assert_eq!(events, vec![created(2, Some(1))]);
    assert_eq!(tree.get(id(1)).unwrap().children, BTreeSet::from([id(2)]));
    assert_eq!(tree.path(id(2)), vec![id(1), id(2)]);
}

#[test]
fn create_refuses_a_used_id() {
    let err = given::<CategoryTree>(tree())
        .when(create(1, "fresh", None))
        .then_expect_error();
    assert_eq!(err, CategoryError::CategoryAlreadyExists(id(1)));
}

#[test]
fn create_refuses_an_unknown_parent() {
    let err = given::<CategoryTree>(tree())
        .when(create(9, "fresh", Some(42)))
        .then_expect_error();
    assert_eq!(err, CategoryError::ParentNotFound(id(42)));
}

#[test]
fn slugs_are_unique_across_the_whole_tree() {
    // Not a sibling of c3, still refused.
    let err = given::<CategoryTree>(tree())
        .when(create(9, "c3", Some(5)))
        .then_expect_error();
    assert_eq!(err, CategoryError::SlugTaken(slug("c3")));
}

#[test]
fn create_refuses_nesting_too_deep() {
    let depth = CategoryTree::MAX_DEPTH as u128;
    // A chain of MAX_DEPTH - 1 levels still takes a child.
    given::<CategoryTree>(chain(depth - 1))
        .when(create(100, "leaf", Some(depth - 2)))
        .then_expect_events([E::CategoryCreated {
            category_id: id(100),
            name: name("Category 100"),
            slug: slug("leaf"),
            parent_id: Some(id(depth - 2)),
            at: at(0),
        }]);
    let err = given::<CategoryTree>(chain(depth))
        .when(create(100, "leaf", Some(depth - 1)))
        .then_expect_error();
    assert_eq!(err, CategoryError::TooDeep { max: 8 });
}

// --- rename -------------------------------------------------------------------------

#[test]
fn rename_changes_name_and_slug() {
    let (events, tree) = given::<CategoryTree>(tree())
        .when(C::RenameCategory {
            category_id: id(2),
            name: name("Men"),
            slug: slug("men"),
            at: at(3),
        })
        .then_state();
    assert_eq!(
        events,
        vec![E::CategoryRenamed {
            category_id: id(2),
            name: name("Men"),
            old_slug: slug("c2"),
            slug: slug("men"),
            at: at(3),
        }]
    );
    assert_eq!(tree.by_slug(&slug("men")).unwrap().id, id(2));
    assert!(tree.by_slug(&slug("c2")).is_none());
}

#[test]
fn rename_may_keep_the_slug() {
    given::<CategoryTree>(tree())
        .when(C::RenameCategory {
            category_id: id(2),
            name: name("Men"),
            slug: slug("c2"),
            at: at(3),
        })
        .then_expect_events([E::CategoryRenamed {
            category_id: id(2),
            name: name("Men"),
            old_slug: slug("c2"),
            slug: slug("c2"),
            at: at(3),
        }]);
}

#[test]
fn rename_refuses_unknown_taken_and_unchanged() {
    let cases = [
        (9, "Nine", "nine", CategoryError::CategoryNotFound(id(9))),
        (2, "Men", "c4", CategoryError::SlugTaken(slug("c4"))),
        (2, "Category 2", "c2", CategoryError::CategoryUnchanged),
    ];
    for (n, new_name, new_slug, expected) in cases {
        let err = given::<CategoryTree>(tree())
            .when(C::RenameCategory {
                category_id: id(n),
                name: name(new_name),
                slug: slug(new_slug),
                at: at(3),
            })
            .then_expect_error();
        assert_eq!(err, expected);
    }
}

// --- move ---------------------------------------------------------------------------

#[test]
fn move_a_subtree_under_another_parent() {
    let (events, tree) = given::<CategoryTree>(tree())
        .when(move_to(2, Some(5)))
        .then_state();
    assert_eq!(
        events,
        vec![E::CategoryMoved {
            category_id: id(2),
            old_parent_id: Some(id(1)),
            new_parent_id: Some(id(5)),
            at: at(5),
        }]
    );
    assert_eq!(tree.path(id(3)), vec![id(5), id(2), id(3)]);
    assert_eq!(tree.get(id(1)).unwrap().children, BTreeSet::from([id(4)]));
    assert_eq!(tree.descendants(id(5)), vec![id(2), id(3)]);
}

#[test]
fn move_to_the_root() {
    let (events, tree) = given::<CategoryTree>(tree())
        .when(move_to(3, None))
        .then_state();
    assert_eq!(
        events,
        vec![E::CategoryMoved {
            category_id: id(3),
            old_parent_id: Some(id(2)),
            new_parent_id: None,
            at: at(5),
        }]
    );
    assert_eq!(tree.path(id(3)), vec![id(3)]);
    assert!(tree.get(id(2)).unwrap().children.is_empty());
}

#[test]
fn move_under_itself_or_a_descendant_is_refused() {
    for target in [1, 2, 3] {
        let err = given::<CategoryTree>(tree())
            .when(move_to(1, Some(target)))
            .then_expect_error();
        assert_eq!(
            err,
            CategoryError::WouldCreateCycle {
                category_id: id(1),
                new_parent_id: id(target)
            }
        );
    }
}

#[test]
fn move_refuses_unknown_category_unknown_parent_and_same_parent() {
    let cases = [
        (9, Some(1), CategoryError::CategoryNotFound(id(9))),
        (2, Some(42), CategoryError::ParentNotFound(id(42))),
        (2, Some(1), CategoryError::AlreadyUnderParent),
        (1, None, CategoryError::AlreadyUnderParent),
    ];
    for (n, parent, expected) in cases {
        let err = given::<CategoryTree>(tree())
            .when(move_to(n, parent))
            .then_expect_error();
        assert_eq!(err, expected);
    }
}

#[test]
fn move_refuses_a_subtree_that_would_nest_too_deep() {
    let depth = CategoryTree::MAX_DEPTH as u128;
    // Chain 0..MAX_DEPTH-1 (depth MAX_DEPTH - 1) plus a two-level subtree 100 -> 101.
    let mut history = chain(depth - 1);
    history.push(created(100, None));
    history.push(created(101, Some(100)));
    // Under level MAX_DEPTH - 2 the subtree reaches exactly MAX_DEPTH: fine.
    given::<CategoryTree>(history.clone())
        .when(move_to(100, Some(depth - 3)))
        .then_expect_events([E::CategoryMoved {
            category_id: id(100),
            old_parent_id: None,
            new_parent_id: Some(id(depth - 3)),
            at: at(5),
        }]);
    let err = given::<CategoryTree>(history)
        .when(move_to(100, Some(depth - 2)))
        .then_expect_error();
    assert_eq!(err, CategoryError::TooDeep { max: 8 });
}

// --- delete -------------------------------------------------------------------------

#[test]
fn delete_a_leaf() {
    let (events, tree) = given::<CategoryTree>(tree())
        .when(C::DeleteCategory {
            category_id: id(3),
            at: at(6),
        })
        .then_state();
    assert_eq!(
        events,
        vec![E::CategoryDeleted {
            category_id: id(3),
            parent_id: Some(id(2)),
            at: at(6),
        }]
    );
    assert!(tree.get(id(3)).is_none());
    assert!(tree.get(id(2)).unwrap().children.is_empty());
    assert_eq!(tree.len(), 4);
}

#[test]
fn delete_refuses_a_category_with_children_or_unknown() {
    let err = given::<CategoryTree>(tree())
        .when(C::DeleteCategory {
            category_id: id(2),
            at: at(6),
        })
        .then_expect_error();
    assert_eq!(err, CategoryError::HasChildren(id(2)));
    let err = given::<CategoryTree>(tree())
        .when(C::DeleteCategory {
            category_id: id(9),
            at: at(6),
        })
        .then_expect_error();
    assert_eq!(err, CategoryError::CategoryNotFound(id(9)));
}

// --- queries ------------------------------------------------------------------------

#[test]
fn descendants_and_path() {
    let t = CategoryTree::from_events(&tree());
    assert_eq!(t.descendants(id(1)), vec![id(2), id(4), id(3)]);
    assert!(t.descendants(id(3)).is_empty());
    assert!(t.descendants(id(99)).is_empty());
    assert_eq!(t.path(id(3)), vec![id(1), id(2), id(3)]);
    assert!(t.path(id(99)).is_empty());
    assert_eq!(t.depth(id(3)), 3);
    assert_eq!(t.depth(id(99)), 0);
    assert_eq!(t.categories().count(), 5);
    assert!(!t.is_empty());
    assert!(CategoryTree::default().is_empty());
}

#[test]
fn events_have_stable_names_and_the_state_round_trips() {
    let t = CategoryTree::from_events(&tree());
    let back: CategoryTree = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(
        back.categories().collect::<Vec<_>>(),
        t.categories().collect::<Vec<_>>()
    );
    let e = created(1, None);
    assert_eq!(e.event_type(), "CategoryCreated");
    assert_eq!(e.event_version(), "1.0");
    let json = serde_json::to_value(&e).unwrap();
    assert!(json.get("CategoryCreated").is_some());
    assert_eq!(CategoryTree::TYPE, "category_tree");
    assert_eq!(CategoryTree::ID, "catalog");
}

// --- invariants over random command sequences ---------------------------------------

const POOL: u128 = 8;

fn any_command() -> impl Strategy<Value = CategoryCommand> {
    let parent = prop::option::weighted(0.7, 0..POOL);
    prop_oneof![
        4 => (0..POOL, 0..POOL, parent.clone()).prop_map(|(n, s, p)| create(n, &format!("s{s}"), p)),
        4 => (0..POOL, parent).prop_map(|(n, p)| move_to(n, p)),
        1 => (0..POOL, 0..POOL).prop_map(|(n, s)| C::RenameCategory {
            category_id: id(n),
            name: name("Renamed"),
            slug: slug(&format!("s{s}")),
            at: at(7),
        }),
        1 => (0..POOL).prop_map(|n| C::DeleteCategory { category_id: id(n), at: at(8) }),
    ]
}

fn check_invariants(t: &CategoryTree) -> Result<(), TestCaseError> {
    let mut slugs = BTreeSet::new();
    for c in t.categories() {
        // Every parent exists and lists the category as a child.
        if let Some(p) = c.parent_id {
            let parent = t.get(p);
            prop_assert!(parent.is_some(), "parent {} of {} is missing", p, c.id);
            prop_assert!(parent.unwrap().children.contains(&c.id));
        }
        // Every child exists and points back.
        for child in &c.children {
            prop_assert_eq!(t.get(*child).and_then(|k| k.parent_id), Some(c.id));
        }
        // Walking up the parents reaches a root within `len` steps: no cycle.
        let mut current = c.parent_id;
        let mut steps = 0;
        while let Some(p) = current {
            prop_assert!(p != c.id, "{} is its own ancestor", c.id);
            steps += 1;
            prop_assert!(steps <= t.len(), "cycle above {}", c.id);
            current = t.get(p).and_then(|k| k.parent_id);
        }
        prop_assert!(t.depth(c.id) <= CategoryTree::MAX_DEPTH);
        prop_assert!(!t.descendants(c.id).contains(&c.id));
        prop_assert!(slugs.insert(c.slug.clone()), "slug {} twice", c.slug);
    }
    Ok(())
}

proptest! {
    #[test]
    fn the_tree_never_has_a_cycle_or_a_missing_parent(
        commands in prop::collection::vec(any_command(), 0..80)
    ) {
        let mut tree = CategoryTree::default();
        let mut history = Vec::new();
        for cmd in commands {
            if let Ok(events) = tree.handle(cmd) {
                for e in events {
                    tree.apply(&e);
                    history.push(e);
                }
            }
            check_invariants(&tree)?;
        }
        let replayed = CategoryTree::from_events(&history);
        prop_assert_eq!(
            replayed.categories().collect::<Vec<_>>(),
            tree.categories().collect::<Vec<_>>()
        );
    }
}
