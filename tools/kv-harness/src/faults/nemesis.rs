//! The nemesis: one fault at a time, each followed by healing and a
//! recovery period, chosen by a seeded random generator and logged with
//! their times.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use super::cluster::{Cluster, ClusterError};
use super::delay::{self, Delayer};
use super::net::{self, Drop, NetError};

/// How long the cluster may take to recover from one fault.
pub const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);
/// How long a node whose every fsync fails may keep running: under the
/// clients' load it fsyncs many times a second, and must stop at the
/// first failure.
const FSYNC_ERROR_STOP: Duration = Duration::from_secs(15);

/// The kinds of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// SIGKILL a random member, later restart it.
    KillRandom,
    /// SIGKILL the leader, later restart it.
    KillLeader,
    /// SIGSTOP a member (the leader half of the time), later SIGCONT it.
    Pause,
    /// Cut one member off from all the others, both ways.
    PartitionOne,
    /// Cut the leader (with a minority) off from the majority.
    PartitionLeader,
    /// Drop everything one member sends to the others, or everything they
    /// send it.
    OneWay,
    /// Drop a share of the packets on one link, both ways.
    PacketLoss,
    /// Hold every peer packet for a random 0 to 20–150 ms for a while:
    /// messages arrive late and out of order across connections
    /// (`super::delay`).
    Delay,
    /// Remove a member (the leader a third of the time), then add a fresh
    /// node with a new id.
    Membership,
    /// Cut one member's power (the leader half of the time): SIGKILL and
    /// every write it did not fsync dropped; later restart it. Needs
    /// `--power-loss-fs`.
    PowerLoss,
    /// Cut every member's power at once, then restart them all. Needs
    /// `--power-loss-fs`.
    PowerLossAll,
    /// Fill one member's disk: its next write past a small margin fails
    /// with ENOSPC; the node must refuse or stop, never acknowledge what
    /// it could not write. Space returns after a while (and a stopped node
    /// is restarted). Needs `--power-loss-fs`.
    DiskFull,
    /// Make every fsync of one member (the leader half of the time) fail
    /// with EIO: it must stop, not carry on ("fsyncgate"). Then its power
    /// is cut and it restarts on a healthy disk. Needs `--power-loss-fs`.
    FsyncError,
    /// Add 20–200 ms to every fsync of one member (the leader half of the
    /// time) for a while. Needs `--power-loss-fs`.
    SlowDisk,
    /// SIGKILL every member at once, then restart them all.
    KillAll,
    /// Cut the leader (with a minority) off from the majority, then SIGKILL
    /// a member of the majority too; restart it, then heal.
    PartitionKill,
    /// Membership changes under faults: remove the leader and SIGSTOP
    /// another member while the leader hands over its leadership; then add
    /// a fresh node and SIGKILL it or the leader while the newcomer catches
    /// up (by snapshot, as a learner waiting for its promotion).
    MembershipKill,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 17] = [
        FaultKind::KillRandom,
        FaultKind::KillLeader,
        FaultKind::Pause,
        FaultKind::PartitionOne,
        FaultKind::PartitionLeader,
        FaultKind::OneWay,
        FaultKind::PacketLoss,
        FaultKind::Delay,
        FaultKind::Membership,
        FaultKind::PowerLoss,
        FaultKind::PowerLossAll,
        FaultKind::DiskFull,
        FaultKind::FsyncError,
        FaultKind::SlowDisk,
        FaultKind::KillAll,
        FaultKind::PartitionKill,
        FaultKind::MembershipKill,
    ];

    /// Whether it needs power-loss mounts (`--power-loss-fs`).
    pub fn cuts_power(self) -> bool {
        matches!(
            self,
            FaultKind::PowerLoss
                | FaultKind::PowerLossAll
                | FaultKind::DiskFull
                | FaultKind::FsyncError
                | FaultKind::SlowDisk
        )
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillRandom => "kill-random",
            FaultKind::KillLeader => "kill-leader",
            FaultKind::Pause => "pause",
            FaultKind::PartitionOne => "partition-one",
            FaultKind::PartitionLeader => "partition-leader",
            FaultKind::OneWay => "one-way",
            FaultKind::PacketLoss => "packet-loss",
            FaultKind::Delay => "delay",
            FaultKind::Membership => "membership",
            FaultKind::PowerLoss => "power-loss",
            FaultKind::PowerLossAll => "power-loss-all",
            FaultKind::DiskFull => "disk-full",
            FaultKind::FsyncError => "fsync-error",
            FaultKind::SlowDisk => "slow-disk",
            FaultKind::KillAll => "kill-all",
            FaultKind::PartitionKill => "partition-kill",
            FaultKind::MembershipKill => "membership-kill",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the nemesis stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NemesisError {
    /// A process problem, or the cluster did not recover in time.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A network rule could not be changed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The delaying queue could not be bound.
    #[error("cannot bind the packet delay queue: {0}")]
    Delay(std::io::Error),
}

/// What the nemesis did.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    /// `(seconds since the start, event)`, in order.
    pub events: Vec<(f64, String)>,
    /// Faults injected, by kind.
    pub counts: BTreeMap<FaultKind, u64>,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (t, e) in &self.events {
            writeln!(f, "{t:9.3}s  {e}")?;
        }
        Ok(())
    }
}

/// Injects faults into `cluster` until `duration` has passed since
/// `start`; keeps `targets` (the members clients talk to) up to date.
pub struct Nemesis<'a> {
    cluster: &'a mut Cluster,
    targets: Arc<RwLock<Vec<u64>>>,
    rng: StdRng,
    start: Instant,
    kinds: Vec<FaultKind>,
    /// Bound at the first `delay` fault, kept for the rest of the run.
    delayer: Option<Delayer>,
    /// What happened so far.
    pub schedule: Schedule,
}

impl<'a> Nemesis<'a> {
    /// A nemesis choosing among `kinds` with `seed`; times count from
    /// `start`.
    pub fn new(
        cluster: &'a mut Cluster,
        targets: Arc<RwLock<Vec<u64>>>,
        seed: u64,
        start: Instant,
        kinds: Vec<FaultKind>,
    ) -> Nemesis<'a> {
        Nemesis {
            cluster,
            targets,
            rng: StdRng::seed_from_u64(seed),
            start,
            kinds,
            delayer: None,
            schedule: Schedule::default(),
        }
    }

    fn log(&mut self, event: String) {
        let t = self.start.elapsed().as_secs_f64();
        println!("[nemesis {t:8.3}s] {event}");
        self.schedule.events.push((t, event));
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.rng.random_range(lo..=hi))
    }

    /// Runs faults until `until` (measured from `start`).
    ///
    /// # Errors
    /// [`NemesisError`] if the cluster did not recover from a fault, a node
    /// exited on its own, or a rule could not be set.
    pub async fn run(&mut self, until: Duration) -> Result<(), NemesisError> {
        while self.start.elapsed() < until {
            let kind = *self
                .kinds
                .choose(&mut self.rng)
                .unwrap_or(&FaultKind::KillRandom);
            *self.schedule.counts.entry(kind).or_default() += 1;
            self.inject(kind).await?;
            self.cluster.check_alive()?;
            self.cluster.wait_healthy(RECOVERY_DEADLINE, false).await?;
            let rest = self.millis(1000, 3000);
            self.log(format!("healthy; resting {rest:?}"));
            tokio::time::sleep(rest).await;
        }
        Ok(())
    }

    async fn leader(&mut self) -> Result<u64, NemesisError> {
        Ok(self.cluster.wait_healthy(RECOVERY_DEADLINE, false).await?)
    }

    fn random_member(&mut self) -> u64 {
        *self
            .cluster
            .members()
            .choose(&mut self.rng)
            .expect("a cluster has members")
    }

    fn others(&self, of: &[u64]) -> Vec<u64> {
        self.cluster
            .members()
            .iter()
            .copied()
            .filter(|m| !of.contains(m))
            .collect()
    }

    /// Both-way drops between every node of `a` and every node of `b`.
    fn cut(a: &[u64], b: &[u64]) -> Vec<Drop> {
        let mut rules = Vec::new();
        for &x in a {
            for &y in b {
                rules.push(Drop {
                    from: x,
                    to: y,
                    percent: 100,
                });
                rules.push(Drop {
                    from: y,
                    to: x,
                    percent: 100,
                });
            }
        }
        rules
    }

    async fn hold_rules(&mut self, rules: &[Drop], hold: Duration) -> Result<(), NemesisError> {
        net::set_rules(rules)?;
        tokio::time::sleep(hold).await;
        net::heal()?;
        self.log("network healed".into());
        Ok(())
    }

    async fn inject(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        match kind {
            FaultKind::KillRandom => {
                let victim = self.random_member();
                self.kill(kind, victim).await
            }
            FaultKind::KillLeader => {
                let victim = self.leader().await?;
                self.kill(kind, victim).await
            }
            FaultKind::Pause => self.pause(kind).await,
            FaultKind::PartitionOne => self.partition_one(kind).await,
            FaultKind::PartitionLeader => self.partition_leader(kind).await,
            FaultKind::OneWay => self.one_way(kind).await,
            FaultKind::PacketLoss => self.packet_loss(kind).await,
            FaultKind::Delay => self.delay(kind).await,
            FaultKind::Membership => self.replace_member(kind).await,
            FaultKind::PowerLoss => {
                let victim = self.leader_or_random().await?;
                self.cut_power(kind, &[victim]).await
            }
            FaultKind::PowerLossAll => {
                let all = self.cluster.members().to_vec();
                self.cut_power(kind, &all).await
            }
            FaultKind::DiskFull => self.disk_full(kind).await,
            FaultKind::FsyncError => self.fsync_error(kind).await,
            FaultKind::SlowDisk => self.slow_disk(kind).await,
            FaultKind::KillAll => self.kill_all(kind).await,
            FaultKind::PartitionKill => self.partition_kill(kind).await,
            FaultKind::MembershipKill => self.membership_kill(kind).await,
        }
    }

    async fn kill_all(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let all = self.cluster.members().to_vec();
        let hold = self.millis(500, 3000);
        self.log(format!("{kind}: SIGKILL nodes {all:?} for {hold:?}"));
        for &id in &all {
            self.cluster.kill(id)?;
        }
        tokio::time::sleep(hold).await;
        for &id in &all {
            self.cluster.restart(id)?;
        }
        self.log(format!("restarted nodes {all:?}"));
        Ok(())
    }

    /// A partition, and a crash on the majority side while it lasts.
    async fn partition_kill(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let (minority, rest) = self.leader_and_minority().await?;
        let victim = *rest.choose(&mut self.rng).expect("a majority");
        let hold = self.millis(1000, 4000);
        self.log(format!(
            "{kind}: leader's side {minority:?} cut off from {rest:?}, and node {victim} \
             SIGKILLed, for {hold:?}"
        ));
        net::set_rules(&Self::cut(&minority, &rest))?;
        self.cluster.kill(victim)?;
        tokio::time::sleep(hold).await;
        self.cluster.restart(victim)?;
        self.log(format!("restarted node {victim}"));
        tokio::time::sleep(self.millis(200, 1000)).await;
        net::heal()?;
        self.log("network healed".into());
        Ok(())
    }

    /// A leader removal with a member paused during the hand-over, then a
    /// join with a crash during the catch-up.
    async fn membership_kill(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let leader = self.cluster.wait_healthy(RECOVERY_DEADLINE, true).await?;
        self.log(format!("{kind}: removing node {leader} (leader)"));
        let deadline = Instant::now() + RECOVERY_DEADLINE;
        self.cluster
            .request_removal(leader, RECOVERY_DEADLINE)
            .await?;
        self.targets.write().retain(|t| *t != leader);
        let paused = self.random_member();
        let hold = self.millis(300, 2500);
        self.log(format!(
            "removal applied; SIGSTOP node {paused} for {hold:?} while node {leader} hands over"
        ));
        self.cluster.pause(paused, true)?;
        tokio::time::sleep(hold).await;
        self.cluster.pause(paused, false)?;
        self.log(format!("SIGCONT node {paused}"));
        self.cluster.wait_removed(leader, deadline).await?;
        self.log(format!("node {leader} removed and exited 0"));
        self.cluster.wait_healthy(RECOVERY_DEADLINE, false).await?;
        let id = self.cluster.add(RECOVERY_DEADLINE).await?;
        self.targets.write().push(id);
        tokio::time::sleep(self.millis(0, 500)).await;
        let victim = if self.rng.random_bool(0.5) {
            id
        } else {
            self.leader().await?
        };
        let hold = self.millis(300, 3000);
        self.log(format!(
            "added node {id} (--join); SIGKILL node {victim} during its catch-up for {hold:?}"
        ));
        self.cluster.kill(victim)?;
        tokio::time::sleep(hold).await;
        self.cluster.restart(victim)?;
        self.log(format!("restarted node {victim}"));
        self.cluster.wait_healthy(RECOVERY_DEADLINE, true).await?;
        self.log(format!("node {id} caught up"));
        Ok(())
    }

    /// Fills a member's disk for a while; restarts it if it stopped.
    async fn disk_full(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let victim = self.random_member();
        let status = self.cluster.disk(victim, "status")?;
        let used: u64 = status
            .split_whitespace()
            .find_map(|w| w.strip_prefix("used-bytes="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let hold = self.millis(2000, 5000);
        self.log(format!(
            "{kind}: node {victim}'s disk full at {used} bytes for {hold:?}"
        ));
        self.cluster.disk(victim, &format!("capacity {used}"))?;
        let stopped = self.cluster.wait_stopped(victim, hold).await.ok();
        self.cluster.disk(victim, "capacity off")?;
        match stopped {
            Some(status) => {
                self.log(format!(
                    "node {victim} stopped ({status}); space is back, restarting it"
                ));
                self.cluster.restart(victim)?;
            }
            None => self.log(format!(
                "space is back on node {victim}, which kept running"
            )),
        }
        Ok(())
    }

    /// Fails a member's fsyncs until it stops, then cuts its power and
    /// restarts it on a healthy disk.
    async fn fsync_error(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let victim = self.leader_or_random().await?;
        self.log(format!(
            "{kind}: every fsync of node {victim} fails with EIO"
        ));
        self.cluster.disk(victim, "fail-fsync on")?;
        let stopped = self.cluster.wait_stopped(victim, FSYNC_ERROR_STOP).await;
        self.cluster.disk(victim, "fail-fsync off")?;
        let status = stopped?;
        self.log(format!(
            "node {victim} stopped ({status}); power cut, disk healthy, restarting it"
        ));
        self.cluster.power_loss(victim)?;
        self.cluster.restart(victim)?;
        Ok(())
    }

    /// Slows a member's fsyncs down for a while.
    async fn slow_disk(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let victim = self.leader_or_random().await?;
        let delay = self.rng.random_range(20..=200u64);
        let hold = self.millis(1000, 5000);
        self.log(format!(
            "{kind}: node {victim}'s fsyncs take {delay} ms more for {hold:?}"
        ));
        self.cluster
            .disk(victim, &format!("fsync-delay-ms {delay}"))?;
        tokio::time::sleep(hold).await;
        self.cluster.disk(victim, "fsync-delay-ms 0")?;
        self.log(format!("node {victim}'s disk is fast again"));
        Ok(())
    }

    /// Cuts the power of `victims` at once, then restarts them.
    async fn cut_power(&mut self, kind: FaultKind, victims: &[u64]) -> Result<(), NemesisError> {
        let hold = self.millis(500, 3000);
        self.log(format!(
            "{kind}: power cut on nodes {victims:?} for {hold:?}"
        ));
        for &id in victims {
            self.cluster.power_loss(id)?;
        }
        tokio::time::sleep(hold).await;
        for &id in victims {
            self.cluster.restart(id)?;
        }
        self.log(format!("power back on nodes {victims:?}"));
        Ok(())
    }

    /// The leader half of the time, else a random member.
    async fn leader_or_random(&mut self) -> Result<u64, NemesisError> {
        if self.rng.random_bool(0.5) {
            self.leader().await
        } else {
            Ok(self.random_member())
        }
    }

    async fn kill(&mut self, kind: FaultKind, victim: u64) -> Result<(), NemesisError> {
        let hold = self.millis(500, 4000);
        self.log(format!("{kind}: SIGKILL node {victim} for {hold:?}"));
        self.cluster.kill(victim)?;
        tokio::time::sleep(hold).await;
        self.cluster.restart(victim)?;
        self.log(format!("restarted node {victim}"));
        Ok(())
    }

    async fn pause(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let victim = self.leader_or_random().await?;
        let hold = self.millis(500, 4000);
        self.log(format!("{kind}: SIGSTOP node {victim} for {hold:?}"));
        self.cluster.pause(victim, true)?;
        tokio::time::sleep(hold).await;
        self.cluster.pause(victim, false)?;
        self.log(format!("SIGCONT node {victim}"));
        Ok(())
    }

    async fn partition_one(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let victim = self.random_member();
        let others = self.others(&[victim]);
        let hold = self.millis(1000, 5000);
        self.log(format!(
            "{kind}: node {victim} cut off from {others:?} for {hold:?}"
        ));
        self.hold_rules(&Self::cut(&[victim], &others), hold).await
    }

    /// The leader with a minority (`(n - 1) / 2 - 1` random companions),
    /// and the majority.
    async fn leader_and_minority(&mut self) -> Result<(Vec<u64>, Vec<u64>), NemesisError> {
        let leader = self.leader().await?;
        let mut rest = self.others(&[leader]);
        rest.shuffle(&mut self.rng);
        let companions = (self.cluster.members().len() - 1) / 2 - 1;
        let mut minority = vec![leader];
        minority.extend(rest.drain(..companions));
        Ok((minority, rest))
    }

    async fn partition_leader(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let (minority, rest) = self.leader_and_minority().await?;
        let hold = self.millis(1000, 5000);
        self.log(format!(
            "{kind}: leader's side {minority:?} cut off from majority {rest:?} for {hold:?}"
        ));
        self.hold_rules(&Self::cut(&minority, &rest), hold).await
    }

    async fn one_way(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let victim = self.leader_or_random().await?;
        let others = self.others(&[victim]);
        let outgoing = self.rng.random_bool(0.5);
        let rules: Vec<Drop> = others
            .iter()
            .map(|&o| {
                let (from, to) = if outgoing { (victim, o) } else { (o, victim) };
                Drop {
                    from,
                    to,
                    percent: 100,
                }
            })
            .collect();
        let hold = self.millis(1000, 5000);
        let dir = if outgoing {
            "sends to"
        } else {
            "receives from"
        };
        self.log(format!(
            "{kind}: drop everything node {victim} {dir} {others:?} for {hold:?}"
        ));
        self.hold_rules(&rules, hold).await
    }

    async fn packet_loss(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let a = self.random_member();
        let others = self.others(&[a]);
        let b = *others.choose(&mut self.rng).expect("two members at least");
        let percent = self.rng.random_range(10..=60u8);
        let hold = self.millis(2000, 6000);
        self.log(format!(
            "{kind}: drop {percent}% of packets between nodes {a} and {b} for {hold:?}"
        ));
        let rules = [
            Drop {
                from: a,
                to: b,
                percent,
            },
            Drop {
                from: b,
                to: a,
                percent,
            },
        ];
        self.hold_rules(&rules, hold).await
    }

    async fn delay(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let max = self.millis(20, 150);
        let hold = self.millis(2000, 6000);
        self.log(format!(
            "{kind}: hold every peer packet for a random 0-{max:?} for {hold:?}"
        ));
        let seed = self.rng.random();
        let delayer = match self.delayer.take() {
            Some(d) => d,
            None => Delayer::start(seed).map_err(NemesisError::Delay)?,
        };
        delayer.hold(max);
        let queued = net::queue_peer_traffic(delay::QUEUE_NUM);
        if queued.is_ok() {
            tokio::time::sleep(hold).await;
        }
        // Rules off first, then the held packets go: nothing stays queued.
        let unqueued = net::unqueue_peer_traffic();
        let delayed = delayer.release();
        self.delayer = Some(delayer);
        queued?;
        unqueued?;
        match delayed {
            Some(t) => self.log(format!(
                "network healed; {} packets were delayed, {} of them overtaken by later ones",
                t.delayed, t.overtaken
            )),
            None => self.log("network healed; the delay thread had stopped".into()),
        }
        Ok(())
    }

    /// Removes a member (the leader a third of the time) and adds a fresh
    /// node with a new id.
    async fn replace_member(&mut self, kind: FaultKind) -> Result<(), NemesisError> {
        let leader = self.cluster.wait_healthy(RECOVERY_DEADLINE, true).await?;
        let victim = if self.rng.random_bool(1.0 / 3.0) {
            leader
        } else {
            self.random_member()
        };
        let role = if victim == leader { " (leader)" } else { "" };
        self.log(format!("{kind}: removing node {victim}{role}"));
        self.cluster.remove(victim, RECOVERY_DEADLINE).await?;
        self.targets.write().retain(|t| *t != victim);
        self.log(format!("node {victim} removed and exited 0"));
        self.cluster.wait_healthy(RECOVERY_DEADLINE, false).await?;
        let id = self.cluster.add(RECOVERY_DEADLINE).await?;
        self.targets.write().push(id);
        self.log(format!("added node {id}; started it with --join"));
        self.cluster.wait_healthy(RECOVERY_DEADLINE, true).await?;
        self.log(format!("node {id} caught up"));
        Ok(())
    }
}
