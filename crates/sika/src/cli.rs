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
    /// Operator accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Merchant API keys.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Where the shop's signed notifications go.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The go-live self-audit: one line per item of Flutterwave's merchant
    /// checklist (and Sika's extras), PASS, WARN or FAIL with the evidence;
    /// exits 1 on any FAIL.
    Check(CheckArgs),
    /// An encrypted, consistent copy of the SQLite database, taken while Sika
    /// serves (key: SIKA_BACKUP_KEY or SIKA_BACKUP_KEY_FILE). PostgreSQL: pg_dump.
    Backup {
        /// The backup file to create (never overwritten; mode 0600).
        #[arg(long)]
        output: PathBuf,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Decrypts a backup into a new SQLite file, then checks its audit chain
    /// and counts what it holds. Point SIKA_DATABASE_URL at it to use it.
    Restore {
        /// The backup file.
        #[arg(long)]
        input: PathBuf,
        /// The new database file (must not exist).
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also probe the running server from outside (TLS, headers, cookies, methods, forged requests).
    #[arg(long)]
    pub url: Option<String>,
    /// A PEM certificate authority to trust for --url (a private CA, or the demo's tls/cert.pem).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dir: DataDirArg,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Adds a user; reads the password from stdin; prints `totp_secret=BASE32`.
    Add {
        #[arg(long)]
        email: String,
        /// admin, operator, approver, viewer or auditor.
        #[arg(long)]
        role: String,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Lifts a sign-in lockout (for the locked-out last admin); audited.
    Unlock {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApikeyCommand {
    /// Creates a key and prints it once as `api_key=KEY`; only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated: checkouts, payouts, cards, read.
        #[arg(long)]
        scopes: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Sets the shop's notification URL and a new signing secret, printed once as
    /// `notify_secret=whsec_…` (as the console's Settings page does; audited).
    Set {
        #[arg(long)]
        url: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Checks the hash chain: `audit chain ok: N entries`, or names the first bad entry;
    /// then the signed checkpoints (SIKA_AUDIT_CHECKPOINT_FILE, or --checkpoints FILE):
    /// fails when the log ends before a checkpoint or disagrees with one.
    Verify {
        /// A checkpoint file to check against (default: the configured one, when it exists).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Writes every entry as JSON lines (to --output or stdout).
    Export {
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Retention: appends entries older than N days to --export, then deletes them.
    Purge {
        #[arg(long, default_value_t = crate::audit::DEFAULT_RETENTION_DAYS)]
        older_than_days: i64,
        #[arg(long)]
        export: PathBuf,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Re-encrypts every sealed field under the first key of SIKA_DATA_KEY (resumable).
    Rotate {
        #[arg(long, default_value_t = 100)]
        batch: i64,
        #[command(flatten)]
        dir: DataDirArg,
    },
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
    /// Start without the demo's first payments, payouts and batch.
    #[arg(long)]
    pub empty: bool,
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
        Command::User(UserCommand::Add { email, role, name, dir, .. }) => {
            crate::ops::user_add(source(dir.data_dir.as_deref())?.as_ref(), &email, &role, name.as_deref()).await
        }
        Command::Apikey(ApikeyCommand::Create { name, scopes, dir }) => {
            crate::ops::apikey_create(source(dir.data_dir.as_deref())?.as_ref(), &name, &scopes).await
        }
        Command::Notify(NotifyCommand::Set { url, dir }) => {
            crate::ops::notify_set(source(dir.data_dir.as_deref())?.as_ref(), &url).await
        }
        Command::User(UserCommand::Unlock { email, dir }) => {
            crate::ops::user_unlock(source(dir.data_dir.as_deref())?.as_ref(), &email).await
        }
        Command::Audit(AuditCommand::Verify { checkpoints, dir }) => {
            crate::ops::audit_verify(source(dir.data_dir.as_deref())?.as_ref(), checkpoints.as_deref()).await
        }
        Command::Audit(AuditCommand::Export { output, dir }) => {
            crate::ops::audit_export(source(dir.data_dir.as_deref())?.as_ref(), output.as_deref()).await
        }
        Command::Audit(AuditCommand::Purge { older_than_days, export, dir }) => {
            crate::ops::audit_purge(source(dir.data_dir.as_deref())?.as_ref(), older_than_days, &export).await
        }
        Command::Keys(KeysCommand::Rotate { batch, dir }) => {
            crate::ops::keys_rotate(source(dir.data_dir.as_deref())?.as_ref(), batch).await
        }
        Command::Check(args) => check(args).await,
        Command::Backup { output, dir } => crate::ops::backup(source(dir.data_dir.as_deref())?.as_ref(), &output).await,
        Command::Restore { input, to, dir } => {
            crate::ops::restore(source(dir.data_dir.as_deref())?.as_ref(), &input, &to).await
        }
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

/// `sika check`: prints the report; `Err` (exit 1) when anything failed.
async fn check(args: CheckArgs) -> Result<(), String> {
    let source = source(args.dir.data_dir.as_deref())?;
    let mut report = crate::check::Report::default();
    crate::check::settings::check(source.as_ref(), &mut report).await;
    match &args.url {
        Some(u) => {
            let url = url::Url::parse(u).map_err(|_| "--url is not a valid URL.".to_string())?;
            let target = crate::check::live::Target { url, ca_file: args.ca_file.clone() };
            crate::check::live::check(&target, &mut report).await;
        }
        None => crate::check::live::not_probed(&mut report),
    }
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    if report.failed() { Err("the go-live check found failures (FAIL above).".into()) } else { Ok(()) }
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
    let fresh = first_people(&dir).await?;
    let seed_key = match (fresh, args.empty) {
        (true, false) => {
            let (auth, store) = crate::ops::auth(&dir).await?;
            let scopes = if config.cards_enabled { "checkouts,read,payouts,cards" } else { "checkouts,read,payouts" };
            let made = auth.create_api_key(&crate::audit::Actor::cli(), "demo-seed", scopes).await;
            store.close().await;
            Some(made.map_err(|e| format!("cannot create the demo's API key: {e}."))?.1)
        }
        _ => None,
    };
    let root = dir.root().display().to_string();
    let emulator_url = emulator.url();
    let cert_pem = std::fs::read_to_string(dir.root().join("tls/cert.pem"))
        .map_err(|e| format!("cannot read the demo certificate: {e}."))?;
    let seed_config = config.clone();
    let result = gateway::run(config, |addr| {
        emulator.set_webhook_url(Some(format!("https://{addr}/webhooks/flutterwave")));
        if let Some(api_key) = seed_key {
            let emulator = emulator_url.clone();
            // Its own thread and runtime: the seed runs beside the server without holding it up.
            std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return tracing::warn!("the demo seed cannot start a runtime");
                };
                rt.block_on(async move {
                    let store = match gateway::open_store(&seed_config).await {
                        Ok(s) => s,
                        Err(e) => return tracing::warn!(error = %e, "the demo seed cannot open the database"),
                    };
                    let flw = match gateway::flutterwave_client(&seed_config, &store) {
                        Ok(f) => f,
                        Err(e) => return tracing::warn!(error = %e, "the demo seed cannot reach the emulator"),
                    };
                    let health = std::sync::Arc::new(crate::jobs::Health::default());
                    let state = gateway::assemble(&seed_config, &store, &seed_config.public_url, flw, health, |_| {});
                    let cards = seed_config.cards_enabled;
                    let seed = crate::demo::Seed { addr, cert_pem, emulator, api_key, payments: state.payments, cards };
                    let made = seed.run().await;
                    println!("demo data: {}", made.join("; "));
                    let late = seed.late_payment(std::time::Duration::from_secs(60 * 10)).await;
                    println!("demo data, later: {late}");
                    store.close().await;
                });
            });
        }
        println!("sika demo is ready: https://{addr}/");
        println!("emulator: {emulator_url}");
        println!("admin sign-in details: {root}/admin-credentials.txt");
        println!("operator and approver too: {root}/demo-users.txt");
        println!("mail (one .eml a message): {root}/mail/ (the console lists it at /admin/mail)");
        println!("data directory: {root}");
        println!("press Ctrl-C to stop");
    })
    .await;
    emulator.shutdown().await;
    result
}

/// The demo's people, already enrolled in TOTP, made the first time only: the admin
/// (`DIR/admin-credentials.txt`, 0600) and, so that a newcomer can make a payment link and see a
/// payout approved without creating anyone, an operator and an approver — all three in
/// `DIR/demo-users.txt` (0600), each as `role email password totp_secret`.
async fn first_people(dir: &DataDir) -> Result<bool, String> {
    let path = dir.root().join("admin-credentials.txt");
    let (auth, store) = crate::ops::auth(dir).await?;
    let existing = store.users().await.map_err(|e| format!("{e}."))?;
    if path.exists() || !existing.is_empty() {
        store.close().await;
        return Ok(false);
    }
    let mut table = String::from("# role email password totp_secret (the demo's people; keep this file private)\n");
    for (role, email, name) in [
        (crate::auth::Role::Admin, "admin@sika-demo.test", "Demo Admin"),
        (crate::auth::Role::Operator, "operator@sika-demo.test", "Demo Operator"),
        (crate::auth::Role::Approver, "approver@sika-demo.test", "Demo Approver"),
    ] {
        // 43 random URL-safe characters plus one of each class the policy asks for.
        let password = format!("{}-Aa9!", crate::crypto::random::token());
        let created = auth
            .create_user(&crate::audit::Actor::cli(), email, Some(name), role, &password, true)
            .await
            .map_err(|e| format!("cannot create the demo's {role}: {e}."))?;
        table.push_str(&format!("{role} {email} {password} {}\n", created.totp_secret));
        if role == crate::auth::Role::Admin {
            let text = format!("email={email}\npassword={password}\ntotp_secret={}\n", created.totp_secret);
            crate::fsutil::write_private(&path, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}.", path.display()))?;
        }
    }
    let users = dir.root().join("demo-users.txt");
    crate::fsutil::write_private(&users, table.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}.", users.display()))?;
    store.close().await;
    Ok(true)
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
