//! Environments (`[env.<name>]` tables): each overrides any key of the base file for one stack,
//! like staging and production from one file. The chosen one (`--env`, `MLDEPLOY_ENV`) is merged
//! over the base (tables deeply, values replaced) before validation, and its stack is named
//! `<project.name>-<env>`, so it has its own resources, lock and history.

use super::diagnostics::{walk_keys, Positions, Problem};

/// The top-level table that holds the environments.
pub(super) const ENV_TABLE: &str = "env";

/// The longest environment name: short enough to leave the project most of AWS's name limits.
pub const NAME_MAX_LEN: usize = 16;

/// Checks an environment's name: it becomes the end of every resource name, so 1 to 16
/// lowercase letters, digits or `-`, starting with a letter.
pub fn check_name(name: &str) -> Result<(), String> {
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if starts && allowed && name.len() <= NAME_MAX_LEN && !name.ends_with('-') {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an environment name: 1 to {NAME_MAX_LEN} lowercase letters, digits or '-', starting with a letter (like staging or prod); it ends every resource name of its stack"
        ))
    }
}

/// The `[env]` table of the file: records where each environment's keys stand (as
/// `env.<name>.<key>`) and reports, naming the environment, keys the schema does not know.
pub(super) fn walk(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    positions: &mut Positions,
    problems: &mut Vec<Problem>,
) {
    let toml::de::DeValue::Table(envs) = value.get_ref() else {
        problems.push(Problem {
            key: Some(ENV_TABLE.into()),
            line: Some(positions.line_of(value.span().start)),
            message: "`env` holds environments as tables, like [env.staging]".into(),
        });
        return;
    };
    for (name, table) in envs {
        let name_text = name.get_ref().as_ref();
        let line = positions.line_of(name.span().start);
        let at = format!("{ENV_TABLE}.{name_text}");
        positions
            .keys
            .insert(at.clone(), (name.span(), table.span()));
        if let Err(why) = check_name(name_text) {
            problems.push(Problem {
                key: Some(at),
                line: Some(line),
                message: format!("[{ENV_TABLE}.{name_text}]: {why}"),
            });
            continue;
        }
        let toml::de::DeValue::Table(inner) = table.get_ref() else {
            problems.push(Problem {
                key: Some(at),
                line: Some(line),
                message: format!("`{ENV_TABLE}.{name_text}` must be a table: [env.{name_text}] with the keys it overrides"),
            });
            continue;
        };
        // Walked as a file of its own (its keys are the schema's), then placed under it.
        let mut own = Positions {
            lines: positions.lines.clone(),
            keys: Default::default(),
            env: Some(name_text.to_string()),
        };
        let mut found = Vec::new();
        walk_keys(inner, "", &mut own, &mut found);
        for (k, spans) in own.keys {
            positions.keys.insert(format!("{at}.{k}"), spans);
        }
        for mut p in found {
            p.message = format!("[{at}] {}", p.message);
            p.key = p.key.map(|k| format!("{at}.{k}"));
            problems.push(p);
        }
    }
}

/// The file's values with environment `env` merged over the base, `[env]` removed. Without an
/// environment, the base alone. An environment the file does not have is a problem listing the
/// ones it has.
pub(super) fn merged(text: &str, env: Option<&str>) -> Result<toml::Table, Problem> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| Problem {
        key: None,
        line: None,
        message: format!("not valid TOML: {}", e.message().trim()),
    })?;
    let envs = match table.remove(ENV_TABLE) {
        Some(toml::Value::Table(envs)) => envs,
        _ => toml::Table::new(),
    };
    let Some(env) = env else {
        return Ok(table);
    };
    let Some(toml::Value::Table(overlay)) = envs.get(env).cloned() else {
        let names: Vec<&str> = envs.keys().map(String::as_str).collect();
        return Err(Problem {
            key: None,
            line: None,
            message: format!(
                "there is no [env.{env}] in it (--env or MLDEPLOY_ENV); environments: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        });
    };
    merge(&mut table, overlay);
    Ok(table)
}

/// `overlay` over `base`: tables merged key by key, any other value replaced.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over)) => merge(inner, over),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The environments `<dir>/mldeploy.toml` has, sorted by name.
pub fn names_in(file: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        crate::exit::error(
            crate::exit::ExitStatus::Usage,
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        crate::exit::error(
            crate::exit::ExitStatus::Usage,
            format!(
                "{} is not valid TOML: {}",
                file.display(),
                e.message().trim()
            ),
        )
    })?;
    Ok(match table.get(ENV_TABLE) {
        Some(toml::Value::Table(envs)) => envs.keys().cloned().collect(),
        _ => Vec::new(),
    })
}

/// The stack name of `project` in `env`.
pub fn stack_name(project: &str, env: &str) -> String {
    format!("{project}-{env}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_overrides_keys_deeply_and_replaces_values() {
        let text = "[project]\nname = \"h\"\n[service]\ncpu = 256\nport = 80\n[service.environment]\nA = \"1\"\n[env.prod.service]\ncpu = 1024\n[env.prod.service.environment]\nB = \"2\"\n";
        let prod = merged(text, Some("prod")).unwrap();
        assert_eq!(prod["service"]["cpu"].as_integer(), Some(1024));
        assert_eq!(prod["service"]["port"].as_integer(), Some(80));
        assert_eq!(prod["service"]["environment"]["A"].as_str(), Some("1"));
        assert_eq!(prod["service"]["environment"]["B"].as_str(), Some("2"));
        assert!(!prod.contains_key("env"));
        let base = merged(text, None).unwrap();
        assert_eq!(base["service"]["cpu"].as_integer(), Some(256));
        let missing = merged(text, Some("qa")).unwrap_err();
        assert!(
            missing.message.contains("environments: prod"),
            "{}",
            missing.message
        );
    }

    #[test]
    fn environment_names_end_resource_names_so_they_are_short_and_plain() {
        assert!(check_name("staging").is_ok());
        assert!(check_name("prod-eu1").is_ok());
        for bad in ["", "Prod", "1st", "a_b", "prod-", "abcdefghijklmnopq"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
