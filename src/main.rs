use std::process::ExitCode;

fn main() -> ExitCode {
    // A closed stdout (`lanterna run … | head`) ends the process like any Unix tool.
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
