//! `bulwark`: the admin tool.
use clap::{Parser, Subcommand};
use ocf_metadata::log::{self, LogConfig};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "bulwark", about = "bulwark admin tool", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Mirror sets: writer, generations, lag, pending changes, last pass, conflicts.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Where the sets' state dirs are.
        #[arg(long, default_value = "/var/lib/bulwark/mirror")]
        state_root: PathBuf,
    },
    /// Resync a set on this node: an explicit, logged pull from NODE, or declare NODE's
    /// newer data forfeited.
    Resync {
        #[arg(long)]
        set: String,
        /// Pull every difference since the common generation from NODE (a split brain is
        /// merged, keeping both versions of every conflict).
        #[arg(long, value_name = "NODE", conflicts_with = "accept_data_loss_from")]
        from: Option<String>,
        /// Declare NODE's newer data of the set forfeited: this node becomes the newest.
        #[arg(long, value_name = "NODE")]
        accept_data_loss_from: Option<String>,
        /// The set's state dir (default <state-root>/<set>).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        #[arg(long, default_value = "/var/lib/bulwark/mirror")]
        state_root: PathBuf,
    },
    /// Conflict copies kept by the resync gate, and where their counterparts live.
    Conflicts {
        #[arg(long)]
        set: String,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        state_dir: Option<PathBuf>,
        #[arg(long, default_value = "/var/lib/bulwark/mirror")]
        state_root: PathBuf,
    },
}

fn state_dir(
    set: &str,
    state_dir: Option<PathBuf>,
    state_root: PathBuf,
) -> anyhow::Result<PathBuf> {
    bulwark_agents::mirror::config::check_set_name(set).map_err(anyhow::Error::msg)?;
    Ok(state_dir.unwrap_or_else(|| state_root.join(set)))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Status { json, state_root } => {
            let reports = bulwark_agents::mirror::cli::collect(&state_root);
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                print!("{}", bulwark_agents::mirror::cli::render_table(&reports));
            }
        }
        Cmd::Resync {
            set,
            from,
            accept_data_loss_from,
            state_dir: sd,
            state_root,
        } => {
            log::init(LogConfig::from_env("bulwark"));
            let sd = state_dir(&set, sd, state_root)?;
            let out = match (from, accept_data_loss_from) {
                (Some(n), None) => bulwark_agents::gate::admin::resync_from(&sd, &n),
                (None, Some(n)) => bulwark_agents::gate::admin::accept_data_loss(&sd, &set, &n),
                _ => anyhow::bail!("give --from NODE or --accept-data-loss-from NODE"),
            };
            print!("{}", out.map_err(anyhow::Error::msg)?);
        }
        Cmd::Conflicts {
            set,
            json,
            state_dir: sd,
            state_root,
        } => {
            let sd = state_dir(&set, sd, state_root)?;
            let recs = bulwark_agents::gate::records::load(&sd);
            if json {
                println!("{}", serde_json::to_string_pretty(&recs)?);
            } else {
                print!(
                    "{}",
                    bulwark_agents::gate::admin::render_conflicts(&set, &recs)
                );
            }
        }
    }
    Ok(())
}
