//! `zygotectl`: the node operator's view of the zygote daemon.
//!
//! * `status`: the daemon (pid, version, uptime, tasks, config, metrics URL,
//!   Wasm cache) and each profile's pool;
//! * `profiles`: the profiles in force; `profiles check FILE` validates a
//!   config file with the daemon's own loader and messages (no daemon needed);
//! * `reload`: the daemon re-reads its config file (as on SIGHUP);
//! * `sim`: the pool-sizing simulator ([`sim`]; no daemon needed).
//!
//! Thin: it finds the daemon as the shim does ([`locate`]), asks over its
//! control socket (`zygote_contract::ctl`) and prints the answer as a table
//! ([`show`]) or, with `--json`, as JSON (the answer's fields; `profiles
//! check --json` has the shape of `profiles --json`, with `error` set when
//! the file is refused). Exit status: 0 done, 1 refused or
//! failed (bad config, reload refused), 2 usage, 3 no daemon answers.

mod locate;
mod show;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use zygote_contract::ctl::{self, CtlError, CtlReply, CtlRequest, LoadedProfiles};

/// No daemon answered at the control socket.
const EXIT_NO_DAEMON: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "zygotectl",
    version,
    about = "Status, profiles and config reload of the zygote daemon"
)]
struct Cli {
    /// containerd's gRPC address; the daemon serving it is found as the
    /// shim finds it (its ttrpc address is this plus `.ttrpc`).
    #[arg(long, global = true, env = "CONTAINERD_ADDRESS", default_value = locate::DEFAULT_ADDRESS)]
    address: String,
    /// containerd's ttrpc address, when its config sets one not derived
    /// from --address.
    #[arg(long, global = true)]
    ttrpc_address: Option<String>,
    /// zygote's state root, as ZYGOTE_STATE_DIR in containerd's
    /// environment (default /run/zygote).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// The daemon's own directory (`<state dir>/<16 hex>`), instead of
    /// deriving it.
    #[arg(long, global = true)]
    daemon_dir: Option<PathBuf>,
    /// Print JSON (for scripts) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The daemon, its tasks and each profile's warm pool.
    Status,
    /// The profiles in force (or `check FILE`).
    Profiles {
        #[command(subcommand)]
        action: Option<ProfilesAction>,
    },
    /// Re-read the daemon's config file: removed profiles' pools drain, new
    /// ones fill, changed bounds apply; running tasks are untouched. An
    /// invalid file is refused and the config in force stays.
    Reload,
    /// Replay a claim trace against each pool-sizing policy (fixed pools,
    /// keep-alive, recent-claims, forecast) on a simulated clock; needs no
    /// daemon. See docs/pool-sizing.md.
    Sim {
        /// A built-in trace (mixed, step-burst, ramp, idle-gaps), `all`, or
        /// a trace file (`t_seconds[,profile]` lines).
        #[arg(long, default_value = "mixed")]
        trace: String,
        /// Generate the built-in traces from this seed instead of their
        /// default ones (same shape, other draws; ignored for a file).
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum ProfilesAction {
    /// Validate a config file as the daemon does when it loads one (same
    /// messages); needs no daemon.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zygotectl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let request = match &cli.command {
        Command::Profiles {
            action: Some(ProfilesAction::Check { file }),
        } => return Ok(check(file, cli.json)),
        Command::Sim { trace, seed } => {
            let outcomes = sim::run(&sim::traces(trace, *seed)?);
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&outcomes)?);
            } else {
                print!("{}", sim::table(&outcomes));
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Status => CtlRequest::Status,
        Command::Profiles { action: None } => CtlRequest::Profiles,
        Command::Reload => CtlRequest::Reload,
    };
    let where_ = locate::locate(
        cli.daemon_dir.clone(),
        cli.state_dir.clone(),
        &cli.address,
        cli.ttrpc_address.clone(),
    );
    let reply = match ctl::call(&where_.dir.control_socket(), &request) {
        Ok(r) => r,
        Err(e @ CtlError::NoDaemon { .. }) => {
            eprintln!("zygotectl: {}", no_daemon(&e, &where_));
            return Ok(ExitCode::from(EXIT_NO_DAEMON));
        }
        Err(e) => return Err(e).context("ask the zygote daemon"),
    };
    if cli.json {
        // The answer itself, without the protocol's `reply` tag.
        let v = match &reply {
            CtlReply::Status(s) => serde_json::to_value(s),
            CtlReply::Profiles(p) => serde_json::to_value(p),
            CtlReply::Reloaded(r) => serde_json::to_value(r),
            CtlReply::Error { message } => Ok(serde_json::json!({ "error": message })),
        }?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    match reply {
        CtlReply::Error { message } => {
            let what = if request == CtlRequest::Reload {
                "reload refused; the config in force stays"
            } else {
                "the daemon answered an error"
            };
            eprintln!("zygotectl: {what}: {message}");
            return Ok(ExitCode::FAILURE);
        }
        _ if cli.json => {}
        CtlReply::Status(s) => print!("{}", show::status(&s)),
        CtlReply::Profiles(p) => print!("{}", show::profiles(&p)),
        CtlReply::Reloaded(r) => print!("{}", show::reload(&r)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The "no daemon" message: the socket tried, its cause, and how it was
/// derived.
fn no_daemon(e: &CtlError, l: &locate::Located) -> String {
    let cause = std::error::Error::source(e).map_or(String::new(), |c| format!(" ({c})"));
    let how = match (&l.ttrpc_address, &l.state_root) {
        (Some(t), Some(r)) => format!(
            "the daemon of the containerd at ttrpc address {t} under state dir {}; \
             other containerd: --address (or $CONTAINERD_ADDRESS), other state dir: --state-dir",
            r.display()
        ),
        _ => "the daemon directory given with --daemon-dir".to_string(),
    };
    format!("{e}{cause}: is a zygote task running? (containerd starts the daemon with the first one). Looked for {how}")
}

/// `profiles check FILE`: the daemon's loader, against the running
/// kernel's Landlock ABI, as the daemon would load it.
fn check(file: &std::path::Path, json: bool) -> ExitCode {
    let abi = zygote_runtime::landlock::abi_version();
    match zygote_config::Config::load(Some(file), abi) {
        Ok(c) => {
            let loaded = LoadedProfiles::of(&c);
            if json {
                println!("{}", serde_json::to_string_pretty(&loaded).expect("json"));
            } else {
                println!("{}: ok, {} profile(s)", file.display(), loaded.profiles.len());
                print!("{}", show::profiles(&loaded));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let message = zygote_contract::proto::error_chain(&e);
            if json {
                let failed = LoadedProfiles {
                    config: Some(file.to_path_buf()),
                    error: Some(message.clone()),
                    default_profile: None,
                    profiles: Vec::new(),
                };
                println!("{}", serde_json::to_string_pretty(&failed).expect("json"));
            }
            eprintln!("zygotectl: {message}");
            ExitCode::FAILURE
        }
    }
}
