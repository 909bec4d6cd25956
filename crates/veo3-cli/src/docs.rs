//! `veo3 completions` and `veo3 man`: the command line described for shells and `man`,
//! generated from the same clap declarations as `--help` (clap_complete, clap_mangen), so they
//! cannot drift from what the binary accepts.

use std::io::Write as _;
use std::path::Path;

use crate::error::CliError;

/// Prints `shell`'s completion script on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut command = crate::args::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "veo3", &mut script);
    write_stdout(&script)
}

/// Prints the root man page on stdout, or writes every page into `dir`.
pub(crate) fn man(dir: Option<&Path>) -> Result<(), CliError> {
    let command = crate::args::command();
    match dir {
        Some(dir) => clap_mangen::generate_to(command, dir)
            .map_err(|error| CliError::Other(format!("--dir {}: {error}", dir.display()))),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|error| CliError::Other(format!("rendering the man page: {error}")))?;
            write_stdout(&page)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|error| CliError::Other(format!("writing to stdout: {error}")))
}
