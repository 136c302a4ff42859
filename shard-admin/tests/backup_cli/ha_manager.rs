//! `shard-admin restore` of a cluster whose shards an HA manager runs
//! (`failover.ha_monitor` set), on the restore test's private cluster: refused while
//! the monitor answers (a listener on a port of the system's choosing stands in for
//! it), naming the steps (`./setup.sh down`, restore, `./setup.sh up`) and changing
//! nothing; with the monitor stopped, planned as an HA restore (each formation's
//! first node, then `up` re-forms it). The restore itself under pg_auto_failover was
//! run by hand on a copy of the repository (README, "Restoring under the HA manager").

use crate::{assert_fails, text, Cli, HA_MONITOR};

/// The refusal while the monitor answers, then the plan once it does not.
pub fn refusal_and_plan(cli: &Cli, name: &str) {
    let monitor = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let monitor_at = monitor.local_addr().unwrap();
    let out = cli.run(
        &["restore", "--point", name, "--yes"],
        &[(
            HA_MONITOR,
            &format!("postgres://autoctl_node@{monitor_at}/pg_auto_failover"),
        )],
    );
    assert_fails(
        &out,
        &format!("this cluster's shards are run by an HA manager, which runs (its monitor answers on {monitor_at}): stop the HA manager first: ./setup.sh down (the monitor and every keeper; the data is kept); then `shard-admin restore --point {name} --yes`, then `./setup.sh up`"),
    );
    drop(monitor);
    // Stopped (nothing answers there), the plan is made as an HA restore's.
    let out = cli.run(
        &["restore", "--point", name],
        &[(
            HA_MONITOR,
            "postgres://autoctl_node@127.0.0.1:1/pg_auto_failover",
        )],
    );
    let plan = text(&out.stdout);
    assert!(out.status.success(), "HA plan: {plan}{}", text(&out.stderr));
    assert!(
        plan.contains("(each formation's first node: stopped"),
        "{plan}"
    );
    assert!(
        plan.contains("then `./setup.sh up`: it re-forms each formation"),
        "{plan}"
    );
}
