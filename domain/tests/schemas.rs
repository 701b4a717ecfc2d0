//! The committed event JSON Schemas in `schemas/events/` match the code.
//!
//! Run with `UPDATE_SCHEMAS=1` to rewrite them after an intended change (then bump the
//! event's version and add an upcaster if the change is not backward compatible).

use std::path::PathBuf;

#[test]
fn committed_event_schemas_match_the_code() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/events");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    std::fs::create_dir_all(&dir).expect("create schemas/events");
    let schemas = emporium_domain::schema::event_schemas();
    let mut drifted = Vec::new();
    for (aggregate, schema) in &schemas {
        let path = dir.join(format!("{aggregate}.json"));
        let generated = serde_json::to_string_pretty(schema).expect("schema serialises") + "\n";
        if update {
            std::fs::write(&path, &generated).expect("write schema");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != generated {
            drifted.push(path.display().to_string());
        }
    }
    // No stale files for aggregates that no longer exist.
    let known: Vec<String> = schemas.iter().map(|(a, _)| format!("{a}.json")).collect();
    for entry in std::fs::read_dir(&dir).expect("schemas/events exists") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".json") && !known.contains(&name) {
            if update {
                std::fs::remove_file(dir.join(&name)).expect("remove stale schema");
            } else {
                drifted.push(format!("{name} (no such aggregate)"));
            }
        }
    }
    assert!(
        drifted.is_empty(),
        "event schemas drifted from the code: {drifted:?}; rerun with UPDATE_SCHEMAS=1 and review the diff"
    );
}
