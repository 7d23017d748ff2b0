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
