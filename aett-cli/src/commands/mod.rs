//! One module per command.

pub mod copy;
pub mod import_python;
pub mod info;
pub mod show;
pub mod streams;
pub mod tail;

use aett::LogFilter;

/// A filter for one tenant, or none.
pub fn tenant_filter(tenant: Option<&str>) -> LogFilter {
    tenant.map_or_else(LogFilter::new, |t| LogFilter::new().tenant(t))
}

use std::io::Write;

use crate::error::CliError;
use crate::output::{self, count};
use crate::progress;
use crate::transfer::Report;

/// Prints what a copy or an import did, and fails if the target differs from the source.
pub fn finish(report: &Report, from: &str, to: &str, json: bool) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    if json {
        output::json_line(&mut out, report)?;
    } else {
        writeln!(out, "from      {from}")?;
        writeln!(out, "to        {to}")?;
        writeln!(
            out,
            "source    {} streams, {} commits, {} events",
            count(report.streams),
            count(report.commits),
            count(report.events)
        )?;
        writeln!(
            out,
            "written   {} commits, {} events in {:.1} s ({:.0} events/s)",
            count(report.written_commits),
            count(report.written_events),
            report.seconds,
            report.events_per_second
        )?;
        writeln!(
            out,
            "present   {} commits the target held already",
            count(report.present_commits)
        )?;
        writeln!(out, "snapshots {}", count(report.snapshots))?;
        if report.differences.is_empty() {
            writeln!(
                out,
                "{}",
                progress::good("verified  every stream and snapshot matches the source")
            )?;
        } else {
            for difference in &report.differences {
                writeln!(out, "{} {difference}", progress::bad("differs  "))?;
            }
        }
    }
    out.flush()?;
    if report.differences.is_empty() {
        Ok(())
    } else {
        Err(CliError::Verification(format!(
            "{} difference(s) between source and target, the first: {}",
            report.differences.len(),
            report.differences[0]
        )))
    }
}
