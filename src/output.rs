//! What mldeploy says, and where: results to stdout (text, or exactly one JSON object), messages
//! and progress to stderr (indicatif bars on a terminal, one plain line per change otherwise).

use std::collections::HashMap;
use std::fmt::Display;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::cli::{GlobalArgs, OutputFormat};

/// Decides once how loud to be and how to show progress; every command prints through it.
#[derive(Debug, Clone)]
pub struct Printer {
    format: OutputFormat,
    quiet: bool,
    verbose: u8,
    bars: bool,
}

impl Printer {
    pub fn new(global: &GlobalArgs) -> Self {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        Printer {
            format: global.output,
            quiet: global.quiet,
            verbose: global.verbose,
            bars: !global.no_progress && !global.quiet && !ci && std::io::stderr().is_terminal(),
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// A message for people, on stderr.
    pub fn info(&self, msg: impl Display) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// Detail shown with -v.
    pub fn detail(&self, msg: impl Display) {
        if self.verbose > 0 {
            eprintln!("  {msg}");
        }
    }

    pub fn warn(&self, msg: impl Display) {
        eprintln!("warning: {msg}");
    }

    /// The command's result on stdout: its Display for people, its JSON for machines.
    pub fn result<R: Serialize + Display>(&self, report: &R) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Text => println!("{report}"),
            OutputFormat::Json => println!("{}", serde_json::to_string(report)?),
        }
        Ok(())
    }

    /// One line of a stream the command prints as it comes (`logs --follow`), on stdout.
    /// One line of a stream that runs until interrupted (`logs --follow`): as text, or with
    /// `--output json` as one JSON object per line (JSON Lines), so a reader can act on each.
    pub fn line<L: Serialize + Display>(&self, line: &L) {
        match self.format {
            OutputFormat::Text => println!("{line}"),
            OutputFormat::Json => match serde_json::to_string(line) {
                Ok(json) => println!("{json}"),
                Err(e) => eprintln!("warning: a line could not be written as JSON: {e}"),
            },
        }
    }

    /// Asks a question on the terminal (stderr) and reads one line of answer from stdin.
    pub fn ask(&self, question: impl Display) -> String {
        use std::io::{BufRead, Write};
        eprint!("{question}");
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok();
        answer
    }

    /// An error for people (stderr), with each cause once; with `--output json`, also the one
    /// JSON object on stdout.
    pub fn error(&self, err: &anyhow::Error, status: crate::exit::ExitStatus) {
        let mut chain = err.chain().map(|e| e.to_string());
        let first = chain.next().unwrap_or_default();
        eprintln!("error: {first}");
        let mut previous = first.clone();
        for cause in chain {
            // anyhow repeats a cause that is also part of the message above it; show each once.
            if !previous.contains(&cause) {
                eprintln!("  caused by: {cause}");
            }
            previous = cause;
        }
        if self.is_json() {
            let object = serde_json::json!({
                "error": format!("{err:#}"),
                "status": status,
                "exit_code": status.code(),
            });
            println!("{object}");
        }
    }

    /// A note after the error, for people (stderr), shown even with `-q`.
    pub fn note(&self, msg: impl Display) {
        eprintln!("{msg}");
    }

    /// A one-line status that updates in place on a terminal (build steps).
    pub fn spinner(&self) -> StepLine {
        let bar = if self.bars {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            None
        };
        StepLine {
            bar,
            quiet: self.quiet,
        }
    }

    /// Per-layer progress for a push.
    pub fn layers(&self) -> LayerBoard {
        LayerBoard {
            multi: self
                .bars
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: HashMap::new(),
            last_status: HashMap::new(),
            quiet: self.quiet,
        }
    }
}

/// The current step of a long operation.
pub struct StepLine {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl StepLine {
    /// A new step: replaces the line on a terminal, prints a line otherwise.
    pub fn step(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None if !self.quiet => eprintln!("{msg}"),
            None => {}
        }
    }

    /// A state that replaces the one before: in place on a terminal, one line each otherwise.
    pub fn status(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(msg.trim_start().to_string()),
            None if !self.quiet => eprintln!("{msg}"),
            None => {}
        }
    }

    /// Engine output inside a step: shown under the spinner only.
    pub fn note(&self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.to_string());
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One bar per layer on a terminal; one line per layer state change otherwise.
pub struct LayerBoard {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
    last_status: HashMap<String, String>,
    quiet: bool,
}

impl LayerBoard {
    /// A layer's new status; `done` when its push has ended (the bar fills and stops).
    pub fn update(
        &mut self,
        layer: &str,
        status: &str,
        current: Option<u64>,
        total: Option<u64>,
        done: bool,
    ) {
        match &self.multi {
            Some(multi) => {
                let bar = self.bars.entry(layer.to_string()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(0));
                    if let Ok(style) = ProgressStyle::with_template(
                        "{prefix} {msg:24} {bar:30} {bytes}/{total_bytes}",
                    ) {
                        bar.set_style(style);
                    }
                    bar.set_prefix(layer.to_string());
                    bar
                });
                if let Some(total) = total {
                    bar.set_length(total);
                }
                if let Some(current) = current {
                    bar.set_position(current);
                }
                bar.set_message(status.to_string());
                if done {
                    if let Some(len) = bar.length() {
                        bar.set_position(len);
                    }
                    bar.finish();
                }
            }
            None => {
                if self.quiet || self.last_status.get(layer).map(String::as_str) == Some(status) {
                    return;
                }
                self.last_status
                    .insert(layer.to_string(), status.to_string());
                match total {
                    Some(total) => eprintln!("  layer {layer}: {status} ({})", human_bytes(total)),
                    None => eprintln!("  layer {layer}: {status}"),
                }
            }
        }
    }

    pub fn finish(self) {
        if let Some(multi) = self.multi {
            let _ = multi.clear();
        }
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
    }
}
