//! Counts the README states, checked against the tree they describe.
//!
//! Each fact is a phrase of `README.md` preceded by a number, and where
//! that number comes from. A README that no longer has the phrase is a
//! finding too, so a reworded sentence cannot drop its check silently.

use std::path::Path;

/// Checks every fact; returns the findings.
pub(crate) fn check(root: &Path) -> Result<Vec<String>, String> {
    let readme = read(root, "README.md")?;
    let readme = normalize(&readme);
    let mut findings = Vec::new();

    let transcripts = count_files(&root.join("raft-core/testdata"), "txt")?;
    fact(
        &mut findings,
        &readme,
        "scenarios live in `raft-core/testdata/`",
        "transcript files in raft-core/testdata/",
        &[transcripts],
    );

    let propose = read(root, "benches/benches/propose.rs")?;
    let rounds = const_value(&propose, "PAIRED_ROUNDS")
        .ok_or("benches/benches/propose.rs: no `const PAIRED_ROUNDS`")?;
    fact(
        &mut findings,
        &readme,
        "rounds that each run every library",
        "PAIRED_ROUNDS in benches/benches/propose.rs",
        &[rounds],
    );

    let sim = read(root, "raft-core/tests/sim.rs")?;
    let defaults = seed_defaults(&sim);
    if defaults.is_empty() {
        findings.push("raft-core/tests/sim.rs: no `RAFT_SIM_*SEEDS` defaults found".into());
    }
    fact(
        &mut findings,
        &readme,
        "seeds each of lease reads",
        "the RAFT_SIM_*SEEDS defaults in raft-core/tests/sim.rs",
        &defaults,
    );
    Ok(findings)
}

fn read(root: &Path, file: &str) -> Result<String, String> {
    std::fs::read_to_string(root.join(file)).map_err(|e| format!("cannot read {file}: {e}"))
}

/// Every run of whitespace as one space, so a phrase matches across the
/// README's line breaks.
fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks that the number before `phrase` in the README equals every one
/// of `actual` (the same quantity wherever the tree has it).
fn fact(findings: &mut Vec<String>, readme: &str, phrase: &str, what: &str, actual: &[u64]) {
    match number_before(readme, phrase) {
        None => findings.push(format!(
            "README.md no longer says \"<number> {phrase}\": update tools/xtask/src/facts.rs"
        )),
        Some(stated) => {
            for &value in actual {
                if value != stated {
                    findings.push(format!(
                        "README.md says \"{stated} {phrase}\" but there are {value} ({what})"
                    ));
                }
            }
        }
    }
}

/// The number (digits, maybe with thousands commas) just before `phrase`.
fn number_before(text: &str, phrase: &str) -> Option<u64> {
    let at = text.find(phrase)?;
    let before = text[..at].trim_end();
    let start = before
        .rfind(|c: char| !(c.is_ascii_digit() || c == ','))
        .map_or(0, |i| i + 1);
    let digits: String = before[start..]
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn count_files(dir: &Path, extension: &str) -> Result<u64, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut count = 0;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == extension) {
            count += 1;
        }
    }
    Ok(count)
}

/// The value of `const NAME: <integer type> = <literal>;`.
fn const_value(source: &str, name: &str) -> Option<u64> {
    let prefix = format!("const {name}:");
    let line = source
        .lines()
        .find(|l| l.trim_start().starts_with(&prefix) || l.contains(&format!(" {prefix}")))?;
    let value = line.split('=').nth(1)?.trim().trim_end_matches(';').trim();
    value.replace('_', "").parse().ok()
}

/// The default of each of the CI seed counts, `env_u64("RAFT_SIM_<VAR>", N)`
/// (the first such call of each variable: the soak test has its own).
fn seed_defaults(source: &str) -> Vec<u64> {
    const VARS: [&str; 5] = [
        "SEEDS",
        "LEASE_SEEDS",
        "LEASE_DRIFT_SEEDS",
        "JOINER_SEEDS",
        "COMPACTION_SEEDS",
    ];
    let mut defaults = Vec::new();
    for var in VARS {
        let call = format!("env_u64(\"RAFT_SIM_{var}\",");
        let Some((_, rest)) = source.split_once(&call) else {
            continue;
        };
        let value: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '_')
            .filter(char::is_ascii_digit)
            .collect();
        if let Ok(value) = value.parse() {
            defaults.push(value);
        }
    }
    defaults
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_before_a_phrase_across_lines() {
        let text = normalize("it has 1,043\n  scenarios live in `here`");
        assert_eq!(number_before(&text, "scenarios live in `here`"), Some(1043));
        assert_eq!(number_before(&text, "absent"), None);
    }

    #[test]
    fn consts_and_seed_defaults_are_found() {
        assert_eq!(
            const_value("const PAIRED_ROUNDS: usize = 2_1;\n", "PAIRED_ROUNDS"),
            Some(21)
        );
        let sim = "let a = env_u64(\"RAFT_SIM_SEEDS\", 200);\n\
                   env_u64(\"RAFT_SIM_LEASE_SEEDS\", 30);\nenv_u64(\"RAFT_SIM_SEEDS\", 5)";
        assert_eq!(seed_defaults(sim), [200, 30]);
    }
}
