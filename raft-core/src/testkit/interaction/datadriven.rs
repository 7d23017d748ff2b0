//! A minimal datadriven file format and runner (in the style of
//! cockroachdb/datadriven, without the dependency).
//!
//! A file is a sequence of blocks separated by blank lines; lines starting
//! with `#` between blocks are comments and are kept on rewrite:
//!
//! ```text
//! # A comment.
//! command arg1 key=value list=(1,2,3)
//! optional input line
//! ----
//! expected output
//! ```
//!
//! The runner executes each block's command and compares its output with
//! the expected text. With the environment variable `REWRITE=1` the file is
//! rewritten in place with the actual outputs instead, so the change can be
//! reviewed as a diff.

use std::fmt;
use std::path::{Path, PathBuf};

/// One argument of a command line: a bare word (`1`, `|`, `drop`) has no
/// values; `key=value` has one; `key=(a,b,c)` has a list (possibly empty).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Arg {
    /// The word before `=`, or the whole bare word.
    pub key: String,
    /// The values after `=`.
    pub vals: Vec<String>,
    /// Whether the argument had an `=`.
    pub has_value: bool,
}

/// One block of a transcript file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TestCase {
    /// The 1-based line of the command in its file.
    pub line: usize,
    /// The command line as written.
    pub cmd_line: String,
    /// The command (the first word).
    pub cmd: String,
    /// The remaining words, parsed.
    pub args: Vec<Arg>,
    /// The lines between the command and `----`.
    pub input: Vec<String>,
    /// The expected output (without a trailing newline).
    pub expected: String,
}

/// Why a transcript file failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TranscriptError {
    /// The file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The file is malformed, or a command was unknown or misused.
    Script {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A command's output differs from the expected text.
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the command.
        line: usize,
        /// The command line.
        command: String,
        /// The text in the file.
        expected: String,
        /// The text the command produced.
        actual: String,
    },
}

impl fmt::Display for TranscriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TranscriptError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            TranscriptError::Script {
                path,
                line,
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
            TranscriptError::Mismatch {
                path,
                line,
                command,
                expected,
                actual,
            } => {
                writeln!(
                    f,
                    "{}:{line}: output of `{command}` differs (- expected, + actual; \
                     rerun with REWRITE=1 to accept):",
                    path.display()
                )?;
                f.write_str(&diff(expected, actual))
            }
        }
    }
}

impl std::error::Error for TranscriptError {}

/// A line diff of two texts: unchanged lines prefixed with two spaces,
/// removed with `- `, added with `+ `.
pub fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // Longest common subsequence table; transcripts are small.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

/// Splits a command line into words, keeping `key=(a, b)` lists together.
fn parse_args(words: &str) -> Result<Vec<Arg>, String> {
    let mut args = Vec::new();
    let mut rest = words.trim();
    while !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        let (arg, consumed) = match word.split_once('=') {
            None => (
                Arg {
                    key: word.to_string(),
                    vals: vec![],
                    has_value: false,
                },
                end,
            ),
            Some((key, val)) if val.starts_with('(') => {
                let start = key.len() + 1;
                let close = rest
                    .find(')')
                    .ok_or_else(|| format!("unclosed list in {word:?}"))?;
                let inner = &rest[start + 1..close];
                let vals = inner
                    .split([',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                (
                    Arg {
                        key: key.to_string(),
                        vals,
                        has_value: true,
                    },
                    close + 1,
                )
            }
            Some((key, val)) => (
                Arg {
                    key: key.to_string(),
                    vals: vec![val.to_string()],
                    has_value: true,
                },
                end,
            ),
        };
        args.push(arg);
        rest = rest[consumed..].trim_start();
    }
    Ok(args)
}

/// A piece of a file: comment or blank lines kept verbatim, or a block.
enum Segment {
    Verbatim(String),
    Case(TestCase),
}

fn parse(path: &Path, text: &str) -> Result<Vec<Segment>, TranscriptError> {
    let lines: Vec<&str> = text.lines().collect();
    let script = |line: usize, message: String| TranscriptError::Script {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut segments = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() || line.starts_with('#') {
            segments.push(Segment::Verbatim(line.to_string()));
            i += 1;
            continue;
        }
        let cmd_line = line.trim().to_string();
        let start = i + 1;
        let (cmd, rest) = cmd_line
            .split_once(char::is_whitespace)
            .unwrap_or((&cmd_line, ""));
        let args = parse_args(rest).map_err(|m| script(start, m))?;
        i += 1;
        let mut input = Vec::new();
        while i < lines.len() && lines[i] != "----" {
            if lines[i].trim().is_empty() {
                return Err(script(i + 1, format!("`{cmd_line}`: missing `----`")));
            }
            input.push(lines[i].to_string());
            i += 1;
        }
        if i == lines.len() {
            return Err(script(start, format!("`{cmd_line}`: missing `----`")));
        }
        i += 1; // ----
        let mut expected = Vec::new();
        while i < lines.len() && !lines[i].is_empty() {
            expected.push(lines[i]);
            i += 1;
        }
        // The blank line ending the block belongs to it.
        i += 1;
        segments.push(Segment::Case(TestCase {
            line: start,
            cmd: cmd.to_string(),
            cmd_line: cmd_line.clone(),
            args,
            input,
            expected: expected.join("\n"),
        }));
    }
    Ok(segments)
}

fn render(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (n, seg) in segments.iter().enumerate() {
        match seg {
            Segment::Verbatim(l) => {
                out.push_str(l);
                out.push('\n');
            }
            Segment::Case(tc) => {
                out.push_str(&tc.cmd_line);
                out.push('\n');
                for l in &tc.input {
                    out.push_str(l);
                    out.push('\n');
                }
                out.push_str("----\n");
                out.push_str(&tc.expected);
                out.push('\n');
                if n + 1 < segments.len() {
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// True when `REWRITE` is set to anything but `0` or the empty string.
pub fn rewrite_requested() -> bool {
    std::env::var("REWRITE").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs every block of the file at `path` through `run`, which returns the
/// command's output or a script error (unknown command, bad argument).
///
/// Outputs are compared with the file; the first difference is returned as
/// [`TranscriptError::Mismatch`]. With `REWRITE=1` (see
/// [`rewrite_requested`]) the file is rewritten with the actual outputs
/// instead.
///
/// Output lines must not be blank (a blank line ends a block); blank lines
/// are removed and empty output is written as `ok`.
///
/// # Errors
/// A [`TranscriptError`] for I/O failures, malformed files, command errors
/// and mismatches.
pub fn run_file_with(
    path: &Path,
    mut run: impl FnMut(&TestCase) -> Result<String, String>,
) -> Result<(), TranscriptError> {
    let io = |error| TranscriptError::Io {
        path: path.to_path_buf(),
        error,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut segments = parse(path, &text)?;
    let rewrite = rewrite_requested();
    for seg in &mut segments {
        let Segment::Case(tc) = seg else { continue };
        let out = run(tc).map_err(|message| TranscriptError::Script {
            path: path.to_path_buf(),
            line: tc.line,
            message: format!("`{}`: {message}", tc.cmd_line),
        })?;
        let mut actual: Vec<&str> = out
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect();
        if actual.is_empty() {
            actual.push("ok");
        }
        let actual = actual.join("\n");
        if rewrite {
            tc.expected = actual;
        } else if actual != tc.expected {
            return Err(TranscriptError::Mismatch {
                path: path.to_path_buf(),
                line: tc.line,
                command: tc.cmd_line.clone(),
                expected: tc.expected.clone(),
                actual,
            });
        }
    }
    if rewrite {
        let new = render(&segments);
        if new != text {
            std::fs::write(path, new).map_err(io)?;
        }
    }
    Ok(())
}

/// The transcript files (`*.txt`) directly inside `dir`, sorted by name.
///
/// # Errors
/// If the directory cannot be read.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, TranscriptError> {
    let io = |error| TranscriptError::Io {
        path: dir.to_path_buf(),
        error,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.extension().is_some_and(|e| e == "txt") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_parse() {
        let args = parse_args("1 type=Append voters=(1, 2,3) learners=() | x").unwrap();
        let keys: Vec<&str> = args.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["1", "type", "voters", "learners", "|", "x"]);
        assert_eq!(args[2].vals, ["1", "2", "3"]);
        assert!(args[3].vals.is_empty() && args[3].has_value);
        assert!(!args[0].has_value);
    }

    #[test]
    fn parse_and_render_round_trip() {
        let text = "# c\n\ncmd 1\nin\n----\nout\nout2\n\ncmd2\n----\nok\n";
        let segs = parse(Path::new("x"), text).unwrap();
        assert_eq!(render(&segs), text);
    }

    #[test]
    fn diff_marks_changes() {
        assert_eq!(diff("a\nb\nc", "a\nx\nc"), "  a\n- b\n+ x\n  c\n");
    }
}
