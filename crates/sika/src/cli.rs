//! The `sika` command line (see `../shared/contract.md`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config, ProcessEnv, Source};
use crate::datadir::DataDir;
use crate::gateway;

#[derive(Parser, Debug)]
#[command(name = "sika", version, about = "A hardened, self-hosted payments gateway for Flutterwave.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Production mode, configured by the environment (SIKA_*, FLW_*).
    Serve,
    /// The whole system on one machine with no set-up: generated secrets,
    /// a self-signed certificate and SQLite in DIR.
    Demo(DemoArgs),
    /// Applies database migrations to SIKA_DATABASE_URL (serve and demo also do it at start).
    Migrate(DataDirArg),
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the demo keeps its database, secrets and certificate.
    #[arg(long, default_value = "./sika-demo")]
    pub data_dir: PathBuf,
    /// HTTPS address to listen on.
    #[arg(long, default_value = config::DEFAULT_LISTEN)]
    pub listen: String,
    /// Address of the in-process Flutterwave emulator (default: any free loopback port).
    #[arg(long)]
    pub emulator_listen: Option<String>,
}

#[derive(Args, Debug)]
pub struct DataDirArg {
    /// Use this demo directory's database and secrets instead of the environment.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Runs the command; `Err` is one sentence for stderr.
pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve => {
            let config = Config::load(&ProcessEnv).map_err(|e| e.0)?;
            gateway::run(config, |addr| println!("sika: serving https://{addr}/")).await
        }
        Command::Demo(args) => demo(args).await,
        Command::Migrate(args) => {
            let source = source(args.data_dir.as_deref())?;
            let url = config::database_url(source.as_ref()).map_err(|e| e.0)?;
            let store = gateway::open_store_at(&url).await?;
            let versions = crate::store::applied_versions(&store).await.map_err(|e| format!("{e}."))?;
            println!("migrations applied; schema version {}", versions.last().copied().unwrap_or(0));
            store.close().await;
            Ok(())
        }
    }
}

fn source(data_dir: Option<&std::path::Path>) -> Result<Box<dyn Source>, String> {
    Ok(match data_dir {
        Some(dir) => Box::new(DataDir::open(dir)?),
        None => Box::new(ProcessEnv),
    })
}

async fn demo(args: DemoArgs) -> Result<(), String> {
    let dir = DataDir::prepare(&args.data_dir)?.with_listen(Some(args.listen));
    let config = Config::load(&dir).map_err(|e| e.0)?;
    let root = dir.root().display().to_string();
    gateway::run(config, move |addr| {
        println!("sika demo is ready: https://{addr}/");
        println!("data directory: {root}");
        println!("press Ctrl-C to stop");
    })
    .await
}
