//! How commits and log entries are printed: JSON lines for scripts, text for people.

use std::io::Write;

use aett::{Commit, LogEntry, StreamDeleted};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::error::CliError;

/// One line of `tail` (and of `show --json`): the entry with its kind.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line<'a> {
    Commit(&'a Commit),
    StreamDeleted(&'a StreamDeleted),
}

/// Writes a log entry as one JSON line.
pub fn entry_json(out: &mut impl Write, entry: &LogEntry) -> Result<(), CliError> {
    match entry {
        LogEntry::Commit(commit) => json_line(out, &Line::Commit(commit)),
        LogEntry::StreamDeleted(deleted) => json_line(out, &Line::StreamDeleted(deleted)),
        // An entry of a kind this tool does not know yet is not printed.
        _ => Ok(()),
    }
}

/// Writes a commit as one JSON line.
pub fn commit_json(out: &mut impl Write, commit: &Commit) -> Result<(), CliError> {
    json_line(out, &Line::Commit(commit))
}

/// Writes any value as one JSON line.
pub fn json_line(out: &mut impl Write, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes a commit for people: its place, identity and headers, then one line per event.
pub fn commit_text(out: &mut impl Write, commit: &Commit) -> Result<(), CliError> {
    writeln!(
        out,
        "commit {}  revisions {}..{}  {}  checkpoint {}",
        commit.commit_sequence,
        commit.first_revision(),
        commit.stream_revision,
        stamp(&commit.commit_stamp),
        commit.checkpoint
    )?;
    let stream_type = commit.stream_type.as_deref().unwrap_or("-");
    writeln!(out, "  id {}  type {stream_type}", commit.commit_id)?;
    if !commit.headers.is_empty() {
        writeln!(
            out,
            "  headers {}",
            serde_json::Value::from_iter(commit.headers.clone())
        )?;
    }
    for (revision, event) in commit.events_with_revisions() {
        write!(
            out,
            "  {revision:>6}  {}  {}",
            event.topic,
            event.body.get()
        )?;
        if !event.headers.is_empty() {
            write!(
                out,
                "  headers {}",
                serde_json::Value::from_iter(event.headers.clone())
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// A stamp as RFC 3339 with microseconds, the precision every backend keeps.
pub fn stamp(stamp: &DateTime<Utc>) -> String {
    stamp.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A count with thousands separated, for people.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }
}
