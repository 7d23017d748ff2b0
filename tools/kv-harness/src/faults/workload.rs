//! The clients of a fault run: each issues, one at a time, writes of unique
//! values (puts, compare-and-swaps from the value it last saw, deletes) and
//! linearizable GETs on a small key set, to a random member each time, and
//! records every operation.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cluster::endpoint;
use super::history::{Op, OpKind, Outcome, Recorder};
use crate::client::{Client, ClientError};

/// The outcome of a failed request: certainly no effect, or unknown.
pub fn outcome_of(e: &ClientError) -> Outcome {
    if e.outcome_unknown() {
        return Outcome::Unknown;
    }
    match e {
        // Never sent, or refused before anything happened.
        ClientError::Connect { .. }
        | ClientError::InvalidEndpoint { .. }
        | ClientError::Unavailable { .. }
        | ClientError::BadRequest { .. }
        | ClientError::TooLarge { .. }
        | ClientError::NotFound { .. } => Outcome::Fail,
        // Anything unexpected: assume nothing.
        _ => Outcome::Unknown,
    }
}

/// The name of key number `i`.
pub fn key_name(i: usize) -> String {
    format!("k{i}")
}

/// Settings of the workload.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Concurrent clients.
    pub clients: u32,
    /// Keys, `k0` … `k{keys-1}`.
    pub keys: usize,
    /// Share of operations that are reads.
    pub read_ratio: f64,
    /// Share of the reads that are serializable (`?serializable`).
    pub serializable_ratio: f64,
    /// Share of the writes that are compare-and-swaps.
    pub cas_ratio: f64,
    /// Share of the writes that are deletes.
    pub delete_ratio: f64,
    /// Per-request deadline of a client.
    pub timeout: Duration,
    /// Seed of the clients' choices.
    pub seed: u64,
}

/// Runs `w.clients` clients against the members listed in `targets`
/// (which the nemesis updates) until `stop` is set; every operation goes to
/// `recorder`.
pub async fn run(
    w: Workload,
    targets: Arc<RwLock<Vec<u64>>>,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
) {
    let mut tasks = Vec::new();
    for c in 0..w.clients {
        let (w, targets, recorder, stop) = (
            w.clone(),
            Arc::clone(&targets),
            recorder.clone(),
            Arc::clone(&stop),
        );
        tasks.push(tokio::spawn(async move {
            client_loop(c, w, targets, recorder, stop).await;
        }));
    }
    for t in tasks {
        // A client task only ends by returning.
        let _ = t.await;
    }
}

async fn client_loop(
    c: u32,
    w: Workload,
    targets: Arc<RwLock<Vec<u64>>>,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
) {
    let client = Client::with_timeout(w.timeout);
    let mut rng = StdRng::seed_from_u64(w.seed ^ (u64::from(c) << 32) ^ 0xC11E_u64);
    let mut seq = 0u64;
    // The value this client last saw each key hold, for its
    // compare-and-swaps.
    let mut seen: HashMap<String, String> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let Some(target) = ({
            let t = targets.read();
            (!t.is_empty()).then(|| t[rng.random_range(0..t.len())])
        }) else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let ep = endpoint(target);
        let key = key_name(rng.random_range(0..w.keys));
        let kind = if rng.random_bool(w.read_ratio) {
            if rng.random_bool(w.serializable_ratio) {
                OpKind::LocalGet { node: target }
            } else {
                OpKind::Get
            }
        } else {
            let pick = rng.random::<f64>();
            match seen.get(&key) {
                Some(v) if pick < w.cas_ratio => OpKind::Cas {
                    expected: v.clone(),
                },
                _ if pick >= 1.0 - w.delete_ratio => OpKind::Delete,
                _ => OpKind::Put,
            }
        };
        let value = matches!(kind, OpKind::Put | OpKind::Cas { .. }).then(|| {
            seq += 1;
            format!("c{c}-{seq}")
        });
        let invoke_ns = recorder.now_ns();
        let result = issue(&client, &ep, &key, &kind, value.as_deref()).await;
        let return_ns = recorder.now_ns();
        let (outcome, value, error) = match result {
            Ok(Done::Read(v)) => (Outcome::Ok, v, None),
            Ok(Done::Written) => (Outcome::Ok, value, None),
            Ok(Done::Mismatch) => (Outcome::Mismatch, value, None),
            Err(e) => (outcome_of(&e), value, Some(e)),
        };
        // What the key holds now, as far as this client knows: the value
        // read or written; after a delete, a missing key or a mismatch,
        // nothing it could expect.
        match (outcome, &value) {
            (Outcome::Ok, Some(v)) => {
                seen.insert(key.clone(), v.clone());
            }
            (Outcome::Ok | Outcome::Mismatch, _) => {
                seen.remove(&key);
            }
            _ => {}
        }
        let op = Op {
            client: c,
            kind,
            key,
            value,
            invoke_ns,
            return_ns,
            outcome,
        };
        let Some(e) = error else {
            recorder.record(op);
            continue;
        };
        recorder.record_error(op, format!("node {target}: {e}"));
        if e.is_retryable() {
            // No leader, or this node is down: the next operation goes to
            // another random member after a short pause.
            tokio::time::sleep(Duration::from_millis(rng.random_range(5..30))).await;
        }
    }
}

/// What a request answered.
enum Done {
    /// A get's value.
    Read(Option<String>),
    /// A write applied.
    Written,
    /// A compare-and-swap that found another value.
    Mismatch,
}

/// Sends one operation of `kind` on `key` (writing `value`) to `ep`.
async fn issue(
    client: &Client,
    ep: &str,
    key: &str,
    kind: &OpKind,
    value: Option<&str>,
) -> Result<Done, ClientError> {
    let k = key.as_bytes();
    let value = Bytes::copy_from_slice(value.unwrap_or("").as_bytes());
    match kind {
        OpKind::Get | OpKind::LocalGet { .. } => {
            let serializable = matches!(kind, OpKind::LocalGet { .. });
            let v = client.get(ep, k, serializable).await?;
            Ok(Done::Read(
                v.map(|b| String::from_utf8_lossy(&b).into_owned()),
            ))
        }
        OpKind::Put => client.put(ep, k, value).await.map(|()| Done::Written),
        OpKind::Delete => client.delete(ep, k).await.map(|()| Done::Written),
        OpKind::Cas { expected } => match client.cas(ep, k, expected.as_bytes(), value).await? {
            true => Ok(Done::Written),
            false => Ok(Done::Mismatch),
        },
    }
}
