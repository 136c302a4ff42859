//! Black-box failure tests: real PostgreSQL servers of the local topology are stopped
//! (`setup.sh pg stop`, i.e. `pg_ctl stop -m immediate`) under a running gateway.
//!
//! The servers are shared, so the tests never overlap: each takes
//! [`test_support::outage::serial`] first, and every outage restarts what it stopped,
//! waits until it accepts connections and its replica streams again, even when an
//! assertion fails.
//!
//! - [`replica`]: a dead replica costs nothing but load on its primary.
//! - [`primary`]: a shard without primary (or without any server) fails fast and alone.
//! - [`pool`]: statement timeouts answer 504 and give their connection back.
//! - [`shutdown`]: SIGTERM lets the requests in flight finish.
//! - [`drain`]: SIGTERM with a drain time: not ready, still serving, then exits.
//! - [`exactly_once`]: a gateway killed (-9) between commit and answer; the retry with
//!   the same `Idempotency-Key` writes nothing twice.
//! - [`exactly_once_idless`]: records without an id in transactions and bulk writes,
//!   retried through HAProxy while a gateway dies after a commit: each stored once.
//! - [`group_commit_kill`]: keyed writes in groups while their primary is killed: each
//!   resent with its key until acknowledged, each applied once.
//! - [`group_commit_locks`]: writes held up by row locks leave their group; the others
//!   commit at once.
//! - [`hangups`]: clients that reset their connection at any moment, thousands of
//!   times, leave no fence, transaction, prepared part or busy session behind.
//! - [`lag`]: a replica whose replay is paused takes no reads until it catches up.
//! - [`fanout`]: a read across shards with one shard down is partial and says so.
//! - [`redis`]: Redis killed under a read loop costs no client error.
//! - [`restart`]: a server restarted while the gateway sat idle costs no request an error.
//! - [`eviction`]: version floors survive Redis losing every key.
//! - [`add_shard`]: a shard added online under writers takes its share, losing nothing.
//! - [`closed_connections`]: connections the server closed cost no write an error,
//!   however soon the next write comes.
//! - [`cluster_load`]: skewed load through two gateway processes: the hot slot leads
//!   the load on both, the cluster view sums them, a stopped gateway is named missing.
//! - [`credentials`]: passwords everywhere, no superuser for the gateway, Redis private.
//! - [`metadata`]: the metadata server down: gateways keep the last map, follow again.
//! - [`rebalance_load`]: a busy shard evened out by load, its share falling as planned;
//!   a key hotter than a shard's share named, not moved.
//! - [`auto_balance`]: the automatic balancer under steady skew acts once, then holds.
//! - [`resharding`]: slots moved online under writers through two gateways; the
//!   mover killed (-9) at every step and resumed; abort and reverse.
//! - [`lb_retry`]: behind HAProxy, a keyed write whose gateway died is retried on
//!   another and happens once; one without a key gets 502.
//! - [`stuck_moves`]: a stopped move is shown stuck by health, `moves status` and
//!   `/api/shards`; one stopped at the switch at once, as two owners.
//! - [`moved_keys`]: an idempotency key's answer moves with its slot.
//! - [`moved_reads`]: a read-your-writes token from a key's new owner is honoured by
//!   a gateway still routing with the old map.
//! - [`neighbours`]: one abusive key (writes its shard refuses, large and all at once;
//!   indexes, long values, 10,000-record queries, forged cursors, bursts) fails no
//!   well-behaved client's request, and holds their p99.
//! - [`planned_operations`]: switchovers there and back and slot moves under keyed
//!   writes, bulk writes, transactions and reads through the HTTP API fail no request.
//! - [`change_stream`]: a table's change stream followed through three slot moves, a
//!   primary's node killed -9 and its consumer's gateway killed -9: every acknowledged
//!   write seen once, in order, transactions whole.
//! - [`unplanned_kill`]: a primary's node killed -9 under load and its standby
//!   promoted: no keyed request fails, writes without a key are 2xx or "may have
//!   committed", counted.
//! - [`rolling_restart`]: three gateways behind HAProxy restarted one by one under
//!   keyed writes and reads (each drained first): no request fails.
//! - [`limits`]: bodies shaped to cost memory, or sent too slowly, are refused within
//!   bounds (peak RSS measured from /proc).
//!
//! - [`txn_kill`]: a transaction's coordinator killed (-9) after PREPARE, after its
//!   logged decision, between its COMMIT PREPAREDs; another gateway's recovery leaves
//!   all or nothing (stops no server).
//! - [`txn_primary`]: a shard primary stopped before a transaction, or after its
//!   decision: 503 naming the shard, all or nothing once it is back.
//! - [`txn_moves`]: a slot move waits for a transaction prepared on its slot (paused,
//!   or its coordinator killed) and carries its outcome.
//! - [`txn_storm`]: the bank invariant for 30 s through two gateways while one is
//!   killed at each 2PC point, slots move and a shard primary stops.
//! - [`snapshot_bank`]: the bank invariant read at one cut (`consistency=snapshot`)
//!   through two gateways, one killed (-9) between its commits: every sum whole; the
//!   same run without a snapshot shows a wrong sum.
//!
//! Imports are tested by the control plane itself (control-plane/tests/import), and
//! `rebalance` by bytes by the admin CLI's tests (shard-admin/tests/rebalance_cli):
//! they need no gateway and stop no server.
//!
//! Support: [`movers`] (the mover as a child process, a logged workload, placement
//! checks), [`txn_support`] (prepared parts, balances, the coordinator log),
//! [`support`] (keys, row locks, a gateway from prepared settings, paused replay) and
//! the `test-support` crate: the serial lock, stopping and restoring servers
//! (`outage`) and waiting (`wait`); and the `test-app` crate: the real binary as a
//! child process (`gateway_process`) and an in-process gateway (`spawn_app`).

mod add_shard;
mod auto_balance;
mod change_stream;
mod closed_connections;
mod cluster_load;
mod credentials;
mod drain;
mod eviction;
mod exactly_once;
mod exactly_once_bulk;
mod exactly_once_idless;
mod exactly_once_random;
mod fanout;
mod group_commit_kill;
mod group_commit_locks;
mod hangups;
mod lag;
mod lb_retry;
mod limits;
mod load_balancer;
mod metadata;
mod moved_keys;
mod moved_reads;
mod movers;
mod neighbours;
mod planned_operations;
mod pool;
mod primary;
mod rebalance_load;
mod redis;
mod replica;
mod resharding;
mod restart;
mod rolling_restart;
mod shutdown;
mod snapshot_bank;
mod stuck_moves;
mod support;
mod txn_kill;
mod txn_moves;
mod txn_primary;
mod txn_storm;
mod txn_support;
mod under_load;
mod unplanned_kill;
