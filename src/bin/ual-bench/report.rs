//! Latency statistics, the printed table and the JSON written for comparison between runs.

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

/// One line of results.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub scenario: String,
    pub case: String,
    #[serde(flatten)]
    pub latency: Option<Latency>,
    /// Other figures of the case (throughput, memory…).
    pub figures: Vec<(String, f64)>,
}

/// Prints the rows as a table and writes them to `target/bench/<name>.json`.
pub fn publish(name: &str, rows: &[Row]) -> anyhow::Result<()> {
    println!(
        "{:<12} {:<34} {:>8} {:>9} {:>9} {:>9}  other",
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
        let other: Vec<String> = row
            .figures
            .iter()
            .map(|(k, v)| format!("{k}={v:.1}"))
            .collect();
        println!(
            "{:<12} {:<34} {n:>8} {p50:>9} {p99:>9} {max:>9}  {}",
            row.scenario,
            row.case,
            other.join(" ")
        );
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    let machine = serde_json::json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "at": time::OffsetDateTime::now_utc().unix_timestamp(),
    });
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::json!({ "machine": machine, "rows": rows }))?,
    )?;
    println!("(written to {})", path.display());
    Ok(())
}
