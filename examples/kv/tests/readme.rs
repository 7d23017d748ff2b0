//! The README stays true to the binary (issue #19, item 6).

const README: &str = include_str!("../README.md");

#[test]
fn the_readme_says_how_to_get_raftkv_before_its_first_bare_raftkv_command() {
    let hint = README
        .find("cargo install --path examples/kv")
        .expect("the README says how to put raftkv on the PATH");
    let mut in_sh = false;
    let mut offset = 0;
    for line in README.split_inclusive('\n') {
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
        } else if in_sh && line.trim_start().starts_with("raftkv ") {
            assert!(
                offset > hint,
                "`{}` comes before the README says where raftkv comes from",
                line.trim()
            );
        }
        offset += line.len();
    }
}

#[test]
fn every_flag_in_the_readme_table_is_a_flag_of_the_binary() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .arg("--help")
        .output()
        .expect("raftkv --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let flags: Vec<&str> = README
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .flat_map(|l| l.split('`').filter(|t| t.starts_with("--")))
        .map(|t| t.split_whitespace().next().unwrap_or(t))
        .collect();
    assert!(flags.len() > 10, "{flags:?}");
    for flag in flags {
        assert!(help.contains(flag), "{flag} is not in raftkv --help");
    }
}

#[test]
fn every_flag_of_the_etcd_comparison_section_is_a_flag_of_bench_vs() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["bench-vs", "--help"])
        .output()
        .expect("raftkv bench-vs --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let start = README
        .find("## Side by side with etcd")
        .expect("the README has the etcd comparison");
    let section = &README[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    // Inline code that starts with a flag: `--warmup 5s`.
    let flags: Vec<&str> = section
        .match_indices("`--")
        .filter_map(|(i, _)| section[i + 1..].split('`').next())
        .map(|t| t.split_whitespace().next().unwrap_or(t))
        .collect();
    assert!(flags.len() > 10, "{flags:?}");
    for flag in flags {
        assert!(
            help.contains(flag),
            "{flag} is not in raftkv bench-vs --help"
        );
    }
}
