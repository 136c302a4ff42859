//! `shard-manager`: the admin CLI's former name, kept for one release. It says so on
//! standard error, then runs `shard-admin` unchanged: the same arguments, output and
//! exit code.

fn main() -> std::process::ExitCode {
    eprintln!(
        "note: the admin CLI is now called `shard-admin`; `shard-manager` still runs it \
         for this release only"
    );
    shard_admin::cli::main()
}
