//! `bulwark`: the admin tool.
use clap::{Parser, Subcommand};
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
    }
    Ok(())
}
