//! Latency statistics, targets, the printed table and the JSON written for comparison between
//! runs.

use std::{path::PathBuf, time::Duration};

use serde::Serialize;

/// Percentiles of a set of durations, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Latency {
            samples: samples.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// A goal for one figure of a row.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub figure: String,
    /// `<=` or `>=`.
    pub bound: &'static str,
    pub limit: f64,
    pub actual: f64,
    pub met: bool,
}

/// One line of results.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub scenario: String,
    pub case: String,
    #[serde(flatten)]
    pub latency: Option<Latency>,
    /// Other figures of the case (throughput, memory, CPU…).
    pub figures: Vec<(String, f64)>,
    pub targets: Vec<Target>,
}

impl Row {
    pub fn new(scenario: &str, case: impl Into<String>) -> Row {
        Row {
            scenario: scenario.into(),
            case: case.into(),
            latency: None,
            figures: Vec::new(),
            targets: Vec::new(),
        }
    }

    pub fn latency(mut self, latency: Latency) -> Row {
        self.latency = Some(latency);
        self
    }

    pub fn figure(mut self, name: &str, value: f64) -> Row {
        self.figures.push((name.into(), value));
        self
    }

    pub fn figures(mut self, figures: Vec<(String, f64)>) -> Row {
        self.figures.extend(figures);
        self
    }

    /// `figure` (a latency percentile like `p99_ms`, or one of the figures) must be at most `limit`.
    pub fn at_most(self, figure: &str, limit: f64) -> Row {
        self.target(figure, "<=", limit)
    }

    /// `figure` must be at least `limit`.
    pub fn at_least(self, figure: &str, limit: f64) -> Row {
        self.target(figure, ">=", limit)
    }

    fn target(mut self, figure: &str, bound: &'static str, limit: f64) -> Row {
        let actual = self.value(figure).unwrap_or(f64::NAN);
        let met = match bound {
            "<=" => actual <= limit,
            _ => actual >= limit,
        };
        self.targets.push(Target {
            figure: figure.into(),
            bound,
            limit,
            actual,
            met,
        });
        self
    }

    fn value(&self, figure: &str) -> Option<f64> {
        let l = self.latency.as_ref();
        match figure {
            "p50_ms" => l.map(|l| l.p50_ms),
            "p99_ms" => l.map(|l| l.p99_ms),
            "max_ms" => l.map(|l| l.max_ms),
            _ => self
                .figures
                .iter()
                .find(|(k, _)| k == figure)
                .map(|(_, v)| *v),
        }
    }
}

/// A figure as the table shows it: as many decimals as matter.
fn number(v: f64) -> String {
    if v.is_nan() {
        "?".into()
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Prints the rows as a table and writes them to `target/bench/<name>.json`.
pub fn publish(name: &str, rows: &[Row]) -> anyhow::Result<()> {
    println!(
        "{:<8} {:<40} {:>7} {:>8} {:>8} {:>8}  targets (other figures below)",
        "scenario", "case", "samples", "p50 ms", "p99 ms", "max ms"
    );
    for row in rows {
        let (n, p50, p99, max) = row.latency.as_ref().map_or_else(
            || ("-".into(), "-".into(), "-".into(), "-".into()),
            |l| {
                (
                    l.samples.to_string(),
                    format!("{:.2}", l.p50_ms),
                    format!("{:.2}", l.p99_ms),
                    format!("{:.2}", l.max_ms),
                )
            },
        );
        let targets: Vec<String> = row
            .targets
            .iter()
            .map(|t| {
                format!(
                    "{}{}{} {} ({})",
                    t.figure,
                    t.bound,
                    number(t.limit),
                    if t.met { "MET" } else { "MISSED" },
                    number(t.actual)
                )
            })
            .collect();
        let other: Vec<String> = row
            .figures
            .iter()
            .map(|(k, v)| format!("{k}={}", number(*v)))
            .collect();
        println!(
            "{:<8} {:<40} {n:>7} {p50:>8} {p99:>8} {max:>8}  {}",
            row.scenario,
            row.case,
            if targets.is_empty() {
                "-".into()
            } else {
                targets.join(", ")
            },
        );
        // The other figures, wrapped under the row.
        let mut line = String::new();
        for figure in other {
            if !line.is_empty() && line.len() + figure.len() > 110 {
                println!("         {line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&figure);
        }
        if !line.is_empty() {
            println!("         {line}");
        }
    }
    let missed: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.targets
                .iter()
                .filter(|t| !t.met)
                .map(move |t| format!("{} / {}: {}", r.scenario, r.case, t.figure))
        })
        .collect();
    let total: usize = rows.iter().map(|r| r.targets.len()).sum();
    println!(
        "targets: {} of {total} met{}",
        total - missed.len(),
        if missed.is_empty() {
            String::new()
        } else {
            format!("; missed: {}", missed.join("; "))
        }
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    let machine = serde_json::json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "at": time::OffsetDateTime::now_utc().unix_timestamp(),
        "load_average": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    });
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::json!({ "machine": machine, "rows": rows }))?,
    )?;
    println!("(written to {})", path.display());
    Ok(())
}
