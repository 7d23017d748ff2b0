//! Shared fixtures for the criterion benchmarks (filled by the [bench] issue).
