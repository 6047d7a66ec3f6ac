use std::process::ExitCode;

fn main() -> ExitCode {
    match lanterna_cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line naming the problem; no backtrace, no panic.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[path = "cli/mod.rs"]
mod lanterna_cli;
