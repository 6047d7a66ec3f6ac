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
        // Ctrl-C: the output so far is already printed; 130 is the shell's SIGINT status.
        Err(lanterna::Error::Interrupted) => {
            eprintln!("lanterna: interrupted");
            ExitCode::from(130)
        }
        Err(e) => {
            // One line naming the problem; no backtrace, no panic.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[path = "cli/mod.rs"]
mod lanterna_cli;
