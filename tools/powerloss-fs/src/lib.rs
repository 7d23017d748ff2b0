//! `powerloss-fs`: a FUSE file system that keeps every write a process has
//! not fsynced in memory apart from what a power cut would keep, and drops
//! it on command — the way LazyFS does for etcd's robustness tests. The
//! raftkv fault test mounts one per node on its data directory; its
//! nemesis kills the node, cuts the power (`power-loss` on the control
//! socket), and restarts it. It can also fail every fsync with EIO, fill
//! up at a given capacity, and slow fsync down (see [`control`]).
//!
//! Everything lives in memory; the file system is meant for tests, not
//! data. It needs `/dev/fuse` and root (it mounts with mount(2); no
//! libfuse or fusermount is needed).
//!
//! ```text
//! powerloss-fs --control /tmp/n1.sock /tmp/n1 &
//! echo power-loss | socat - UNIX-CONNECT:/tmp/n1.sock
//! umount /tmp/n1
//! ```

#![deny(missing_docs)]

pub mod control;
pub mod fs;
pub mod model;
