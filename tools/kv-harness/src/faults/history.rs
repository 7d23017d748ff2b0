//! The recorded history of a fault run: one [`Op`] per client request.
//!
//! A history is written one operation per line, fields separated by one
//! space:
//!
//! ```text
//! client op key value invoke_ns return_ns outcome
//! 3 put k2 c3-17 1200450 1803311 ok
//! 5 get k2 c3-17 1500000 1900000 ok
//! 7 get k4 nil 1600000 1700000 ok
//! ```
//!
//! `op` is `put`, `get`, `delete`, `cas` (compare-and-swap) or `sget@N`
//! (a serializable read served by node `N` from its own state); `value` is
//! the value written or read, `nil` for a read of a missing key, a failed
//! read or a delete, and `expected>new` for a compare-and-swap; times are
//! nanoseconds since the run started (the return time of an operation with
//! an unknown outcome is when the client stopped waiting); `outcome` is
//! `ok`, `fail` (the request certainly had no effect), `unknown` (it may or
//! may not have taken effect) or, for a compare-and-swap only, `mismatch`
//! (it was applied and found another value, so it wrote nothing). Keys and
//! values contain no whitespace, and values no `>`.
//!
//! ```text
//! 2 cas k2 c3-17>c2-4 2000000 2400000 mismatch
//! 4 delete k2 nil 2100000 2500000 ok
//! ```

use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

/// What an operation did.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// A write of `value`.
    Put,
    /// A linearizable read that returned `value`.
    Get,
    /// A removal of the key (`value` is `None`).
    Delete,
    /// A serializable read (`?serializable`) that node `node` served from
    /// its own state, possibly stale, and that returned `value`.
    LocalGet {
        /// The node that served it.
        node: u64,
    },
    /// A write of `value` if the key held `expected`.
    Cas {
        /// The value the key had to hold.
        expected: String,
    },
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It was acknowledged: a write is applied, a read's value is known.
    Ok,
    /// It certainly had no effect (refused, or never sent).
    Fail,
    /// It may or may not have taken effect (timeout, broken connection,
    /// 504).
    Unknown,
    /// A compare-and-swap was applied and found another value (or none):
    /// it wrote nothing, and the key did not hold `expected` then.
    Mismatch,
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The client that issued it.
    pub client: u32,
    /// Put or get.
    pub kind: OpKind,
    /// The key.
    pub key: String,
    /// The value written, or the value read (`None`: missing key, or a read
    /// that did not succeed).
    pub value: Option<String>,
    /// When the client sent it, in nanoseconds since the run started.
    pub invoke_ns: u64,
    /// When the client got the answer or gave up.
    pub return_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// A history line that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The line does not have the seven fields.
    #[error(
        "line {line}: expected 7 fields `client op key value invoke_ns return_ns outcome`, got {got}"
    )]
    Fields {
        /// 1-based line number.
        line: usize,
        /// How many fields it had.
        got: usize,
    },
    /// A field has a bad value.
    #[error("line {line}: bad {field} {value:?}")]
    Field {
        /// 1-based line number.
        line: usize,
        /// Which field.
        field: &'static str,
        /// What it held.
        value: String,
    },
    /// The file could not be read.
    #[error("cannot read the history: {0}")]
    Io(#[from] io::Error),
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpKind::Put => f.write_str("put"),
            OpKind::Get => f.write_str("get"),
            OpKind::Delete => f.write_str("delete"),
            OpKind::Cas { .. } => f.write_str("cas"),
            OpKind::LocalGet { node } => write!(f, "sget@{node}"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
            Outcome::Mismatch => "mismatch",
        })
    }
}

impl fmt::Display for Op {
    /// The history line of this operation (without a newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.value.as_deref().unwrap_or("nil");
        write!(f, "{} {} {} ", self.client, self.kind, self.key)?;
        if let OpKind::Cas { expected } = &self.kind {
            write!(f, "{expected}>")?;
        }
        write!(
            f,
            "{value} {} {} {}",
            self.invoke_ns, self.return_ns, self.outcome
        )
    }
}

impl Op {
    /// Parses one history line; `line` numbers errors.
    ///
    /// # Errors
    /// [`ParseError`] naming the bad field.
    pub fn parse(text: &str, line: usize) -> Result<Op, ParseError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [client, kind, key, value, invoke, ret, outcome] = fields[..] else {
            return Err(ParseError::Fields {
                line,
                got: fields.len(),
            });
        };
        let bad = |field: &'static str, value: &str| ParseError::Field {
            line,
            field,
            value: value.to_string(),
        };
        let (kind, value) = match (kind, value.split_once('>')) {
            ("put", None) => (OpKind::Put, value),
            ("get", None) => (OpKind::Get, value),
            ("delete", None) if value == "nil" => (OpKind::Delete, value),
            (sget, None) if sget.starts_with("sget@") => {
                let node = parse_num(&sget[5..]).ok_or_else(|| bad("op", sget))?;
                (OpKind::LocalGet { node }, value)
            }
            ("cas", Some((expected, new))) if expected != "nil" && new != "nil" => {
                let expected = expected.to_string();
                (OpKind::Cas { expected }, new)
            }
            ("put" | "get" | "delete" | "cas", _) => return Err(bad("value", value)),
            (other, _) => return Err(bad("op", other)),
        };
        let outcome = match outcome {
            "ok" => Outcome::Ok,
            "fail" => Outcome::Fail,
            "unknown" => Outcome::Unknown,
            "mismatch" if matches!(kind, OpKind::Cas { .. }) => Outcome::Mismatch,
            other => return Err(bad("outcome", other)),
        };
        Ok(Op {
            client: parse_num(client).ok_or_else(|| bad("client", client))?,
            kind,
            key: key.to_string(),
            value: (value != "nil").then(|| value.to_string()),
            invoke_ns: parse_num(invoke).ok_or_else(|| bad("invoke_ns", invoke))?,
            return_ns: parse_num(ret).ok_or_else(|| bad("return_ns", ret))?,
            outcome,
        })
    }
}

fn parse_num<T: FromStr>(s: &str) -> Option<T> {
    s.parse().ok()
}

/// Reads a history written by [`write_history`] (blank lines and lines
/// starting with `#` are skipped).
///
/// # Errors
/// [`ParseError`] for the first bad line or a read error.
pub fn read_history(reader: impl BufRead) -> Result<Vec<Op>, ParseError> {
    let mut ops = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        ops.push(Op::parse(t, i + 1)?);
    }
    Ok(ops)
}

/// Writes `ops`, one per line, sorted by invocation time, to `path`.
///
/// # Errors
/// Any I/O error.
pub fn write_history(path: &Path, ops: &[Op]) -> io::Result<()> {
    let mut sorted: Vec<&Op> = ops.iter().collect();
    sorted.sort_by_key(|o| (o.invoke_ns, o.return_ns, o.client));
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    for op in sorted {
        writeln!(out, "{op}")?;
    }
    out.flush()
}

/// Collects operations from concurrent clients, timestamped against one
/// monotonic clock. Cheap to clone; clones share the history.
#[derive(Clone, Debug)]
pub struct Recorder {
    start: Instant,
    ops: Arc<Mutex<Vec<Op>>>,
    errors: Arc<Mutex<Vec<(Op, String)>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Arc::default(),
            errors: Arc::default(),
        }
    }

    /// Nanoseconds since the recorder was created.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant time zero stands for.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Records a finished operation.
    pub fn record(&self, op: Op) {
        self.ops.lock().push(op);
    }

    /// Records a failed operation with the error the client saw.
    pub fn record_error(&self, op: Op, error: String) {
        self.errors.lock().push((op.clone(), error));
        self.record(op);
    }

    /// Every failed operation with its error, in the order recorded.
    pub fn errors(&self) -> Vec<(Op, String)> {
        self.errors.lock().clone()
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<Op> {
        self.ops.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_line_round_trips() {
        let op = Op {
            client: 3,
            kind: OpKind::Put,
            key: "k2".into(),
            value: Some("c3-17".into()),
            invoke_ns: 10,
            return_ns: 20,
            outcome: Outcome::Unknown,
        };
        let line = op.to_string();
        assert_eq!(line, "3 put k2 c3-17 10 20 unknown");
        assert_eq!(Op::parse(&line, 1).unwrap(), op);
        let get = Op::parse("1 get k0 nil 5 6 ok", 1).unwrap();
        assert_eq!(get.value, None);
        assert!(matches!(
            Op::parse("1 get k0 nil 5 6", 7),
            Err(ParseError::Fields { line: 7, got: 6 })
        ));
        assert!(matches!(
            Op::parse("1 swap k0 nil 5 6 ok", 2),
            Err(ParseError::Field { field: "op", .. })
        ));
    }

    #[test]
    fn deletes_and_compare_and_swaps_round_trip_and_are_checked() {
        for line in [
            "2 cas k2 c3-17>c2-4 10 20 mismatch",
            "2 cas k2 c3-17>c2-4 10 20 ok",
            "4 delete k2 nil 10 20 unknown",
            "5 sget@3 k2 c3-17 10 20 ok",
        ] {
            assert_eq!(Op::parse(line, 1).unwrap().to_string(), line);
        }
        let cas = Op::parse("2 cas k2 a>b 10 20 ok", 1).unwrap();
        assert_eq!(
            cas.kind,
            OpKind::Cas {
                expected: "a".into()
            }
        );
        assert_eq!(cas.value.as_deref(), Some("b"));
        for (bad, field) in [
            ("2 cas k2 b 10 20 ok", "value"),
            ("2 cas k2 nil>b 10 20 ok", "value"),
            ("2 delete k2 v 10 20 ok", "value"),
            ("2 put k2 a>b 10 20 ok", "value"),
            ("2 put k2 b 10 20 mismatch", "outcome"),
            ("2 sget@x k2 b 10 20 ok", "op"),
        ] {
            let e = Op::parse(bad, 1).unwrap_err();
            assert!(
                matches!(e, ParseError::Field { field: f, .. } if f == field),
                "{bad}: {e}"
            );
        }
    }
}
