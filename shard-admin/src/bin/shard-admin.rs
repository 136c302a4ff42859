//! `shard-admin`: admin commands for a Shardgate cluster (the command line is the
//! library's `cli` module).

fn main() -> std::process::ExitCode {
    shard_admin::cli::main()
}
