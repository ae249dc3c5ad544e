#![forbid(unsafe_code)]

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = sika::cli::Cli::parse();
    sika::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sika: cannot start the async runtime: {e}.");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(sika::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(sentence) => {
            eprintln!("sika: {sentence}");
            std::process::ExitCode::FAILURE
        }
    }
}
