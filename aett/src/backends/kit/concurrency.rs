//! The commit rules every backend enforces the same way: when an attempt is invalid, and what
//! an attempt whose sequence another writer took gets back.

use crate::conflict::ConflictDetector;
use crate::error::StoreError;
use crate::model::{Commit, CommitAttempt};

/// The error for `attempt` whose sequence is taken, once the backend knows the commit id is not
/// already stored: `later` are the stream's commits from the attempt's sequence on (the ones the
/// writer had not seen). The detector compares the attempt with those commits only.
pub fn resolve_taken_sequence(
    attempt: &CommitAttempt,
    later: Vec<Commit>,
    detector: &ConflictDetector,
) -> StoreError {
    let conflicting = match detector.conflicts(attempt, &later) {
        Ok(conflicting) => conflicting,
        Err(error) => return error,
    };
    if conflicting {
        StoreError::ConflictingCommit {
            tenant: attempt.tenant_id.clone(),
            stream: attempt.stream_id.clone(),
            commit_sequence: attempt.commit_sequence,
            committed: later,
        }
    } else {
        StoreError::NonConflictingCommit {
            tenant: attempt.tenant_id.clone(),
            stream: attempt.stream_id.clone(),
            commit_sequence: attempt.commit_sequence,
            committed: later,
        }
    }
}

/// Checks that `attempt` follows the stream head `(sequence, revision)` exactly.
/// A sequence at or below the head is a race (handled by the caller); one beyond it, or a
/// revision that does not continue the head, is an invalid commit.
pub fn check_follows_head(attempt: &CommitAttempt, head: (u64, u64)) -> Result<(), StoreError> {
    let (head_sequence, head_revision) = head;
    let invalid = |reason: String| StoreError::InvalidCommit {
        tenant: attempt.tenant_id.clone(),
        stream: attempt.stream_id.clone(),
        commit_sequence: attempt.commit_sequence,
        reason,
    };
    if attempt.commit_sequence > head_sequence + 1 {
        return Err(invalid(format!(
            "commit sequence {} skips ahead of the stream's head sequence {head_sequence}",
            attempt.commit_sequence
        )));
    }
    if attempt.commit_sequence == head_sequence + 1 && attempt.first_revision() != head_revision + 1
    {
        return Err(invalid(format!(
            "the commit's first revision {} does not follow the stream's head revision {head_revision}",
            attempt.first_revision()
        )));
    }
    Ok(())
}
