//! `xtask lint`: the rules, and the ratchet of long functions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::facts;
use crate::scan::{self, Function};
use crate::workspace::{self, TargetKind};

/// The longest a function may be, in lines from `fn` to its closing brace.
pub(crate) const LINE_LIMIT: usize = 70;

/// The list of functions longer than [`LINE_LIMIT`] today, relative to the
/// workspace root.
pub(crate) const LIST: &str = "tools/xtask/long-functions.txt";

/// Runs every check over the workspace at `root`; with `update`, rewrites
/// the list of long functions first. Returns the findings, one line each.
pub(crate) fn run(root: &Path, update: bool) -> Result<Vec<String>, String> {
    let mut findings = Vec::new();
    let mut functions: BTreeMap<(PathBuf, String), Function> = BTreeMap::new();
    for package in workspace::members(root)? {
        for target in &package.targets {
            let tree = scan::scan_tree(&target.root);
            findings.extend(tree.errors.iter().cloned());
            let root_file = relative(root, &target.root);
            if target.kind == TargetKind::Lib && !tree.denies_missing_docs {
                findings.push(format!(
                    "{}: library root of {} lacks #![deny(missing_docs)]",
                    root_file.display(),
                    package.name
                ));
            }
            if target.kind == TargetKind::Lib && package.published {
                for print in tree.prints.iter().filter(|p| !is_test_support(&p.file)) {
                    findings.push(format!(
                        "{}:{}: {}! in the library code of {} (return the text, or use tracing)",
                        relative(root, &print.file).display(),
                        print.line,
                        print.name,
                        package.name
                    ));
                }
            }
            for mut function in tree.functions {
                function.file = relative(root, &function.file);
                let key = (function.file.clone(), function.name.clone());
                functions.entry(key).or_insert(function);
            }
        }
    }
    let long: Vec<&Function> = functions
        .values()
        .filter(|f| f.lines > LINE_LIMIT)
        .collect();
    let list_path = root.join(LIST);
    if update {
        std::fs::write(&list_path, render_list(&long))
            .map_err(|e| format!("cannot write {LIST}: {e}"))?;
    }
    let text =
        std::fs::read_to_string(&list_path).map_err(|e| format!("cannot read {LIST}: {e}"))?;
    let listed = parse_list(&text)?;
    findings.extend(ratchet(&listed, &functions));
    findings.extend(facts::check(root)?);
    Ok(findings)
}

/// Whether a library file is test support for users (a `testkit`
/// module, behind a feature): its opt-in traces go to stderr by design.
fn is_test_support(file: &Path) -> bool {
    file.components().any(|c| c.as_os_str() == "testkit")
}

fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

/// An entry of the list: the function's file and name, and its length when
/// it was listed.
type Listed = BTreeMap<(PathBuf, String), usize>;

fn render_list(long: &[&Function]) -> String {
    let mut text = format!(
        "# Functions longer than {LINE_LIMIT} lines (from `fn` to the closing brace), with\n\
         # their length when listed. `cargo run -p xtask -- lint` fails when one grows,\n\
         # when one shrinks or is gone and its entry is not lowered or removed, and\n\
         # when a function not listed passes the limit. Shorten, do not add:\n\
         # `cargo run -p xtask -- lint --update` rewrites this file from the tree.\n\
         # lines  file  function\n"
    );
    let mut rows: Vec<_> = long.to_vec();
    rows.sort_by(|a, b| (&a.file, &a.name).cmp(&(&b.file, &b.name)));
    for f in rows {
        text.push_str(&format!("{}\t{}\t{}\n", f.lines, f.file.display(), f.name));
    }
    text
}

fn parse_list(text: &str) -> Result<Listed, String> {
    let mut listed = Listed::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let (Some(lines), Some(file), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "{LIST}:{}: expected `lines file function`",
                number + 1
            ));
        };
        let lines = lines
            .parse()
            .map_err(|_| format!("{LIST}:{}: `{lines}` is not a line count", number + 1))?;
        listed.insert((PathBuf::from(file), name.trim().to_owned()), lines);
    }
    Ok(listed)
}

/// The findings of the length rule: new long functions, listed ones that
/// grew, and entries that no longer match the tree.
fn ratchet(listed: &Listed, functions: &BTreeMap<(PathBuf, String), Function>) -> Vec<String> {
    let mut findings = Vec::new();
    for (key, f) in functions {
        let at = format!("{}:{}: {}", f.file.display(), f.line, f.name);
        match listed.get(key) {
            None if f.lines > LINE_LIMIT => findings.push(format!(
                "{at} is {} lines, over the limit of {LINE_LIMIT}: split it",
                f.lines
            )),
            Some(&was) if f.lines > was => findings.push(format!(
                "{at} grew from {was} to {} lines (listed in {LIST}; the limit is {LINE_LIMIT}): split it",
                f.lines
            )),
            Some(_) if f.lines <= LINE_LIMIT => findings.push(format!(
                "{at} is {} lines, within the limit: remove it from the list ({LIST})",
                f.lines
            )),
            Some(&was) if f.lines < was => findings.push(format!(
                "{at} shrank from {was} to {} lines: lower its entry in {LIST}",
                f.lines
            )),
            _ => {}
        }
    }
    for (file, name) in listed.keys() {
        if !functions.contains_key(&(file.clone(), name.clone())) {
            findings.push(format!(
                "{}: {name} is gone: remove it from the list ({LIST})",
                file.display()
            ));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(name: &str, lines: usize) -> ((PathBuf, String), Function) {
        let file = PathBuf::from("a/src/lib.rs");
        let f = Function {
            file: file.clone(),
            name: name.to_owned(),
            line: 1,
            lines,
        };
        ((file, name.to_owned()), f)
    }

    fn listed(entries: &[(&str, usize)]) -> Listed {
        entries
            .iter()
            .map(|(name, lines)| ((PathBuf::from("a/src/lib.rs"), (*name).to_owned()), *lines))
            .collect()
    }

    #[test]
    fn the_ratchet_only_lets_listed_lengths_stand() {
        let functions: BTreeMap<_, _> = [
            function("short", 20),
            function("new_long", 71),
            function("same", 90),
            function("grew", 91),
            function("shrank", 80),
            function("now_short", 60),
        ]
        .into_iter()
        .collect();
        let list = listed(&[
            ("same", 90),
            ("grew", 90),
            ("shrank", 85),
            ("now_short", 75),
            ("gone", 100),
        ]);
        let findings = ratchet(&list, &functions).join("\n");
        assert!(findings.contains("new_long is 71 lines, over the limit"));
        assert!(findings.contains("grew grew from 90 to 91"));
        assert!(findings.contains("shrank shrank from 85 to 80"));
        assert!(findings.contains("now_short is 60 lines, within the limit: remove it"));
        assert!(findings.contains("gone is gone: remove it"));
        assert!(!findings.contains("same"));
        assert!(!findings.contains(": short "));
        assert_eq!(ratchet(&list, &functions).len(), 5);
    }

    #[test]
    fn the_list_round_trips() {
        let (_, a) = function("<S as T>::f", 99);
        let text = render_list(&[&a]);
        let parsed = parse_list(&text).unwrap();
        assert_eq!(parsed, listed(&[("<S as T>::f", 99)]));
    }
}
