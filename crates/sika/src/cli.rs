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
    /// The standalone Flutterwave emulator (plain HTTP, meant for loopback).
    Emulator(EmulatorArgs),
}

#[derive(Args, Debug)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: String,
    /// The secret key clients must send as `Authorization: Bearer KEY`.
    #[arg(long, env = "FLW_SECRET_KEY", hide_env_values = true)]
    pub secret_key: String,
    /// The secret hash that signs webhooks.
    #[arg(long, env = "FLW_SECRET_HASH", hide_env_values = true)]
    pub secret_hash: String,
    /// Where webhooks are delivered.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// A PEM certificate to trust when delivering webhooks (e.g. a self-signed Sika).
    #[arg(long)]
    pub webhook_ca_file: Option<PathBuf>,
    /// Seed for deterministic fault injection.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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
        Command::Emulator(args) => emulator(args).await,
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
    let read = |name: &str| {
        std::fs::read_to_string(dir.secret_path(name))
            .map(|s| s.trim_end().to_string())
            .map_err(|e| format!("cannot read the demo's {name}: {e}."))
    };
    let emulator_config = flutterwave_emulator::EmulatorConfig {
        secret_key: read("FLW_SECRET_KEY")?,
        secret_hash: read("FLW_SECRET_HASH")?,
        webhook_url: None,
        webhook_root_pem: Some(
            std::fs::read_to_string(dir.root().join("tls/cert.pem"))
                .map_err(|e| format!("cannot read the demo certificate: {e}."))?,
        ),
        seed: 0,
    };
    let emulator_listen = args.emulator_listen.unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&emulator_listen)
        .await
        .map_err(|e| format!("cannot listen on --emulator-listen {emulator_listen}: {e}."))?;
    let emulator =
        flutterwave_emulator::Emulator::start(emulator_config, listener).await.map_err(|e| format!("{e}."))?;
    let dir = dir.with_flw_base_url(Some(emulator.base_url()));
    let config = Config::load(&dir).map_err(|e| e.0)?;
    let root = dir.root().display().to_string();
    let emulator_url = emulator.url();
    let result = gateway::run(config, |addr| {
        emulator.set_webhook_url(Some(format!("https://{addr}/webhooks/flutterwave")));
        println!("sika demo is ready: https://{addr}/");
        println!("emulator: {emulator_url}");
        println!("data directory: {root}");
        println!("press Ctrl-C to stop");
    })
    .await;
    emulator.shutdown().await;
    result
}

async fn emulator(args: EmulatorArgs) -> Result<(), String> {
    let webhook_root_pem = match &args.webhook_ca_file {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|e| format!("cannot read --webhook-ca-file: {e}."))?),
        None => None,
    };
    if let Some(url) = &args.webhook_url {
        url::Url::parse(url).map_err(|_| "--webhook-url is not a valid URL.".to_string())?;
    }
    if args.secret_key.is_empty() || args.secret_hash.is_empty() {
        return Err("--secret-key and --secret-hash must not be empty.".into());
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on --listen {}: {e}.", args.listen))?;
    let config = flutterwave_emulator::EmulatorConfig {
        secret_key: args.secret_key,
        secret_hash: args.secret_hash,
        webhook_url: args.webhook_url,
        webhook_root_pem,
        seed: args.seed,
    };
    let emulator = flutterwave_emulator::Emulator::start(config, listener).await.map_err(|e| format!("{e}."))?;
    println!("emulator: {}", emulator.url());
    println!("FLW_BASE_URL={}", emulator.base_url());
    gateway::wait_for_signal().await;
    emulator.shutdown().await;
    Ok(())
}
