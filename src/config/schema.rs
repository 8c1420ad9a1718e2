//! The JSON Schema of `mldeploy.toml`, generated from the raw types the parser reads (so it names
//! every key mldeploy knows, and no other), for editors that complete and check TOML against a
//! schema (Taplo, VS Code's Even Better TOML, JetBrains). `mldeploy schema` prints it; the copy
//! committed as `schema/mldeploy.schema.json` is checked to be current by a unit test.

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use super::environments::NAME_MAX_LEN;
use super::raw::RawConfig;

/// The schema, as pretty JSON with a final newline (the committed file's bytes).
pub fn text() -> String {
    let mut text = serde_json::to_string_pretty(&sorted(schema())).unwrap_or_default();
    text.push('\n');
    text
}

/// The schema: draft-07 (what most editors' TOML support reads), no `null` (TOML has none), and
/// `[env.<name>]` tables that may hold any key of the file but `env`.
pub fn schema() -> Value {
    let mut root = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RawConfig>()
        .to_value();
    drop_null(&mut root);
    let properties = root.get("properties").cloned().unwrap_or_else(|| json!({}));
    if let Some(definitions) = root.get_mut("definitions").and_then(Value::as_object_mut) {
        definitions.insert(
            "Environment".into(),
            json!({
                "description": "One environment's keys, merged over the file's (tables key by key, values replaced).",
                "type": "object",
                "additionalProperties": false,
                "properties": properties,
            }),
        );
    }
    if let Some(properties) = root.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert(
            "env".into(),
            json!({
                "description": "Environments: each [env.<name>] overrides keys of this file for one stack, deployed with --env <name> as <project.name>-<name>.",
                "type": "object",
                "propertyNames": {
                    "pattern": format!("^[a-z]([a-z0-9-]{{0,{}}}[a-z0-9])?$", NAME_MAX_LEN - 2)
                },
                "additionalProperties": { "$ref": "#/definitions/Environment" },
            }),
        );
    }
    root
}

/// `value` with every object's keys in order, whether or not serde_json keeps insertion order
/// (a dependency's feature can switch it on in one build and not another).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Removes `null` from every schema in `value`: an `Option` field is one TOML may leave out, never
/// one it sets to null (TOML has no null).
fn drop_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(choices)) = map.get_mut("anyOf") {
                choices.retain(|c| c.get("type").is_none_or(|t| t != "null"));
                if choices.len() == 1 {
                    if let Some(Value::Object(only)) = choices.pop() {
                        map.remove("anyOf");
                        map.extend(only);
                    }
                }
            }
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            map.values_mut().for_each(drop_null);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI's check that the committed schema is current: regenerate it with
    /// `cargo run -- schema > schema/mldeploy.schema.json` after changing a key.
    #[test]
    fn the_committed_schema_is_the_generated_one() {
        let committed = include_str!("../../schema/mldeploy.schema.json");
        assert!(
            committed == text(),
            "schema/mldeploy.schema.json is not what mldeploy generates: run `cargo run -- schema > schema/mldeploy.schema.json` and commit it"
        );
    }

    #[test]
    fn every_schema_key_is_in_the_json_schema() {
        let schema = schema();
        for (table, keys) in super::super::raw::SCHEMA {
            let mut at = &schema;
            for part in table.split('.') {
                // `workers.*`: the tables under `workers`, whatever their names.
                at = match part {
                    "*" => &at["additionalProperties"],
                    _ => &at["properties"][part],
                };
                let reference = at["$ref"].as_str().or(at["allOf"][0]["$ref"].as_str());
                if let Some(reference) = reference {
                    let name = reference.trim_start_matches("#/definitions/");
                    at = &schema["definitions"][name];
                }
            }
            for key in keys.iter().filter(|k| **k != "*") {
                assert!(
                    at["properties"].get(*key).is_some(),
                    "{table}.{key} is missing from the JSON Schema: {at}"
                );
            }
        }
    }

    #[test]
    fn no_key_may_be_null() {
        assert!(!text().contains("\"null\""), "{}", text());
    }

    #[test]
    fn environments_take_the_files_keys_and_names_like_check_name() {
        let schema = schema();
        let env = &schema["properties"]["env"];
        let pattern = env["propertyNames"]["pattern"].as_str().unwrap();
        assert_eq!(pattern, "^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$");
        let environment = &schema["definitions"]["Environment"]["properties"];
        assert!(environment.get("service").is_some());
        assert!(environment.get("env").is_none());
        // Enumerations editors offer come from the raw types' attributes.
        assert_eq!(
            schema["definitions"]["Deploy"]["properties"]["strategy"]["enum"],
            json!(["rolling", "blue_green", "canary", "linear"])
        );
    }
}
