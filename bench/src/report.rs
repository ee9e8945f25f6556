//! Measurements, the table and the JSON.

use std::time::Duration;

use serde::Serialize;

/// One timed run: how many units in how long.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Measured {
    /// Units done (commits, events or loads, as the scenario says).
    pub count: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// For the contended scenario: the share of attempts that lost a race.
    pub conflict_rate: Option<f64>,
    /// For the contended scenario: when the first writer had made all its commits, as a share
    /// of the whole run. Near 1 when the writers take turns fairly; low when one writer keeps
    /// the lock and the others wait (they then lose few races because they barely race).
    pub first_done: Option<f64>,
}

impl Measured {
    /// `count` units in `elapsed`.
    pub fn new(count: u64, elapsed: Duration) -> Self {
        Self {
            count,
            seconds: elapsed.as_secs_f64(),
            conflict_rate: None,
            first_done: None,
        }
    }

    /// Adds the conflict rate.
    pub fn with_conflict_rate(mut self, rate: f64) -> Self {
        self.conflict_rate = Some(rate);
        self
    }

    /// Adds when the first writer finished, from each writer's finishing time since the start.
    pub fn with_first_done(mut self, finished: &[Duration]) -> Self {
        if let Some(first) = finished.iter().min() {
            self.first_done = Some(first.as_secs_f64() / self.seconds.max(1e-9));
        }
        self
    }

    /// Units per second.
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.seconds.max(1e-9)
    }
}

/// One row of the table: a scenario on a backend, aett beside the direct program.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The backend.
    pub backend: String,
    /// The scenario.
    pub scenario: String,
    /// What is counted per second.
    pub unit: String,
    /// Through aett.
    pub aett: Measured,
    /// Hand-written against the driver, where there is a driver.
    pub direct: Option<Measured>,
}

impl Row {
    /// aett's rate over the direct program's.
    pub fn ratio(&self) -> Option<f64> {
        self.direct.map(|direct| self.aett.rate() / direct.rate())
    }
}

/// Prints the table as Markdown.
pub fn print_table(rows: &[Row]) {
    println!("| backend | scenario | unit | aett /s | direct /s | aett / direct | conflicts (aett, direct) |");
    println!("|---|---|---|---:|---:|---:|---|");
    for row in rows {
        let direct = row
            .direct
            .map_or_else(|| "–".to_owned(), |d| format!("{:.0}", d.rate()));
        let ratio = row
            .ratio()
            .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}"));
        let conflicts = |m: &Measured| {
            let lost = m
                .conflict_rate
                .map(|rate| format!("{:.0}% lost", rate * 100.0));
            match (lost, m.first_done) {
                (Some(lost), Some(first)) => {
                    format!("{lost}, first writer done at {:.0}%", first * 100.0)
                }
                (Some(lost), None) => lost,
                _ => String::new(),
            }
        };
        let conflicts = match (conflicts(&row.aett), row.direct.as_ref().map(conflicts)) {
            (a, Some(d)) if !d.is_empty() => format!("{a}; {d}"),
            (a, _) => a,
        };
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} |",
            row.backend,
            row.scenario,
            row.unit,
            row.aett.rate(),
            direct,
            ratio,
            conflicts
        );
    }
}
