//! How a config problem is told: each [`Problem`] with its key and line (from [`Positions`],
//! where every key stands in the text), unknown keys with the closest known one, and all of them
//! at once in a [`ConfigError`].

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use super::raw::SCHEMA;

/// One thing wrong with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

/// Every problem found in one file; its Display is what the user reads.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match self.problems.len() {
            1 => write!(f, "{file} is not valid:")?,
            n => write!(f, "{file} has {n} problems:")?,
        }
        for p in &self.problems {
            match p.line {
                Some(line) => write!(f, "\n  {file}:{line}: {}", p.message)?,
                None => write!(f, "\n  {file}: {}", p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Where each key and its value stand in the text.
#[derive(Debug, Default)]
pub(super) struct Positions {
    pub(super) lines: Vec<usize>, // byte offset where each line starts
    pub(super) keys: HashMap<String, (Range<usize>, Range<usize>)>, // dotted key -> (key span, value span)
    /// The environment merged over the base file: a key it sets is placed at its own line in
    /// `[env.<name>]`, and named with it.
    pub(super) env: Option<String>,
}

impl Positions {
    pub(super) fn line_of(&self, offset: usize) -> usize {
        match self.lines.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    pub(super) fn key_line(&self, key: &str) -> Option<usize> {
        let from_env = self.env_key(key).and_then(|k| self.keys.get(&k));
        from_env
            .or_else(|| self.keys.get(key))
            .map(|(k, _)| self.line_of(k.start))
    }

    /// `env.<name>.<key>` when the chosen environment sets `key` (or a table above it).
    pub(super) fn env_key(&self, key: &str) -> Option<String> {
        let env = self.env.as_deref()?;
        let mut prefix = key;
        loop {
            let candidate = format!("{}.{env}.{prefix}", super::environments::ENV_TABLE);
            if self.keys.contains_key(&candidate) {
                return Some(candidate);
            }
            prefix = prefix.rsplit_once('.')?.0;
        }
    }

    /// The innermost key whose value holds this offset (for serde's type errors).
    pub(super) fn key_at(&self, offset: usize) -> Option<&str> {
        self.keys
            .iter()
            .filter(|(_, (_, v))| v.start <= offset && offset < v.end.max(v.start + 1))
            .min_by_key(|(_, (_, v))| v.len())
            .map(|(k, _)| k.as_str())
    }
}

/// Collects problems, each placed at its key's line.
pub(super) struct Report<'a> {
    pub(super) positions: &'a Positions,
    pub(super) problems: &'a mut Vec<Problem>,
}

impl Report<'_> {
    pub(super) fn add(&mut self, key: &str, message: String) {
        let message = match (&self.positions.env, self.positions.env_key(key)) {
            (Some(env), Some(_)) => format!("[env.{env}] {message}"),
            _ => message,
        };
        self.problems.push(Problem {
            key: Some(key.to_string()),
            line: self.positions.key_line(key),
            message,
        })
    }
}

fn known_keys(table: &str) -> Option<&'static [&'static str]> {
    SCHEMA
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, keys)| *keys)
}

fn all_dotted_keys() -> impl Iterator<Item = String> {
    SCHEMA
        .iter()
        .flat_map(|(t, keys)| {
            keys.iter()
                .filter(|k| **k != "*")
                .map(move |k| format!("{t}.{k}"))
        })
        .chain(SCHEMA.iter().map(|(t, _)| t.to_string()))
}

/// Records every key's position and reports keys the schema does not know.
pub(super) fn walk_keys(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    positions: &mut Positions,
    problems: &mut Vec<Problem>,
) {
    for (key, value) in table {
        let name = key.get_ref().as_ref();
        if prefix.is_empty() && name == super::environments::ENV_TABLE && positions.env.is_none() {
            // The file's own top level: its [env.<name>] tables are walked as environments.
            super::environments::walk(value, positions, problems);
            continue;
        }
        let dotted = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        positions
            .keys
            .insert(dotted.clone(), (key.span(), value.span()));

        let table = schema_table(prefix);
        let allowed = if prefix.is_empty() {
            known_keys(name).is_some()
        } else {
            match known_keys(&table) {
                Some(keys) => keys.contains(&"*") || keys.contains(&name),
                None => true, // inside a free-form table: values are checked by type later
            }
        };
        if !allowed {
            let mut message = format!("`{dotted}` is not a known key");
            if let Some(why) = not_for_workers(&table, name) {
                message = format!("`{dotted}`: {why}");
            } else if let Some(suggestion) = closest_key(&dotted) {
                message.push_str(&format!("; did you mean `{suggestion}`?"));
            } else if let Some(keys) = known_keys(&table) {
                message.push_str(&format!("; [{prefix}] takes: {}", keys.join(", ")));
            }
            problems.push(Problem {
                key: Some(dotted.clone()),
                line: Some(positions.line_of(key.span().start)),
                message,
            });
            continue;
        }
        if let toml::de::DeValue::Table(inner) = value.get_ref() {
            walk_keys(inner, &dotted, positions, problems);
        }
    }
}

/// The schema's name for a table: `workers.<name>` and the tables in it are `workers.*`.
fn schema_table(table: &str) -> String {
    match table.strip_prefix("workers.") {
        Some(rest) => match rest.split_once('.') {
            Some((_, inner)) => format!("workers.*.{inner}"),
            None => "workers.*".to_string(),
        },
        None => table.to_string(),
    }
}

/// Why a key of the model API's tables has no place in a worker's: a worker has no load
/// balancer, port, checks through it, or smoke test; those keys are [service]'s and [smoke]'s.
fn not_for_workers(table: &str, key: &str) -> Option<String> {
    let service_key = known_keys("service").is_some_and(|keys| keys.contains(&key));
    if table != "workers.*" || !(service_key || key == "smoke") {
        return None;
    }
    let takes = known_keys("workers.*").unwrap_or_default().join(", ");
    let whose = if key == "smoke" {
        "[smoke]'s, the request sent through the load balancer"
    } else {
        "[service]'s, the model API's behind the load balancer"
    };
    Some(format!(
        "a worker has no `{key}`: it is {whose}, and a worker has no load balancer; [workers.<name>] takes {takes}"
    ))
}

/// The known key closest to an unknown one, when it is close enough to be a typo.
fn closest_key(unknown: &str) -> Option<String> {
    let (table, leaf) = unknown.rsplit_once('.').unwrap_or(("", unknown));
    // A worker's keys are the schema's `workers.*` keys under the worker's own name.
    let worker = table
        .strip_prefix("workers.")
        .map(|rest| rest.split_once('.').map_or(rest, |(name, _)| name));
    all_dotted_keys()
        .filter(|known| worker.is_some() || !known.starts_with("workers.*"))
        .map(|known| match worker {
            Some(name) => known.replacen("workers.*", &format!("workers.{name}"), 1),
            None => known,
        })
        .map(|known| {
            let (ktable, kleaf) = known.rsplit_once('.').unwrap_or(("", &known));
            // A typo in the leaf within the same table counts more than a key in another table.
            let score =
                strsim::jaro_winkler(leaf, kleaf) + if ktable == table { 0.05 } else { 0.0 };
            (score, known)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}
