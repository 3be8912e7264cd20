//! results.json, report.md and the plots.
