//! `.dockerignore` with Docker's own semantics, on top of globset.
//!
//! Docker's rules differ from `.gitignore`: a pattern is matched against the whole path from the
//! context root (`*.pyc` excludes `a.pyc` but not `sub/a.pyc`; write `**/*.pyc` for every level),
//! `*` never crosses `/`, a pattern that matches a directory excludes everything below it, and the
//! last matching line wins, so `!keep.txt` after `*.txt` brings one file back.

use anyhow::Context;
use globset::{GlobBuilder, GlobMatcher};

/// The parsed `.dockerignore` of a build context.
#[derive(Debug, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    matcher: GlobMatcher,
    exception: bool,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore`; errors name the line.
    pub fn parse(text: &str) -> anyhow::Result<DockerIgnore> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                anyhow::bail!(".dockerignore line {}: `{line}` has no pattern", n + 1);
            }
            let matcher = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .with_context(|| {
                    format!(
                        ".dockerignore line {}: `{line}` is not a valid pattern",
                        n + 1
                    )
                })?
                .compile_matcher();
            rules.push(Rule { matcher, exception });
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether any `!` line exists; without one, an excluded directory can be skipped whole.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }

    /// Whether a path (relative to the context, `/`-separated) is left out of the context.
    pub fn is_excluded(&self, path: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            // Like Docker, skip a rule that could not change the outcome.
            if rule.exception != excluded {
                continue;
            }
            if path_and_parents(path).any(|p| rule.matcher.is_match(p)) {
                excluded = !rule.exception;
            }
        }
        excluded
    }
}

/// `a/b/c` -> `a/b/c`, `a`, `a/b`: the path itself first, then every parent directory.
fn path_and_parents(path: &str) -> impl Iterator<Item = &str> {
    std::iter::once(path).chain(path.match_indices('/').map(move |(i, _)| &path[..i]))
}

/// Go's `filepath.Clean` as Docker applies it to patterns: no `./`, no trailing or doubled `/`,
/// `..` folded, and no leading `/` (patterns are relative to the context root).
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn a_plain_pattern_matches_from_the_root_only() {
        let di = ignore("*.pyc\n");
        assert!(di.is_excluded("a.pyc"));
        assert!(
            !di.is_excluded("pkg/a.pyc"),
            "Docker, unlike git, anchors patterns at the root"
        );
        let di = ignore("**/*.pyc\n");
        assert!(di.is_excluded("a.pyc"));
        assert!(di.is_excluded("pkg/deep/a.pyc"));
    }

    #[test]
    fn a_directory_pattern_excludes_everything_below_it() {
        let di = ignore("data\n/.git/\n");
        assert!(di.is_excluded("data"));
        assert!(di.is_excluded("data/train/part-0.parquet"));
        assert!(di.is_excluded(".git/HEAD"));
        assert!(!di.is_excluded("database.py"));
    }

    #[test]
    fn star_does_not_cross_directories() {
        let di = ignore("docs/*.md\n");
        assert!(di.is_excluded("docs/a.md"));
        assert!(!di.is_excluded("docs/sub/a.md"));
    }

    #[test]
    fn the_last_matching_line_wins() {
        let di = ignore("*.txt\n!keep.txt\n");
        assert!(di.is_excluded("notes.txt"));
        assert!(!di.is_excluded("keep.txt"));
        assert!(di.has_exceptions());
        let di = ignore("!keep.txt\n*.txt\n");
        assert!(di.is_excluded("keep.txt"));
    }

    #[test]
    fn comments_blank_lines_and_dot_slashes_are_handled() {
        let di = ignore("# cache\n\n./build//\n");
        assert!(di.is_excluded("build/out.o"));
        assert!(!di.is_excluded("# cache"));
        assert!(!di.has_exceptions());
    }

    #[test]
    fn a_bad_pattern_names_its_line() {
        let err = DockerIgnore::parse("ok\n[z-a\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
