//! The `sluice` command; everything it does lives in the library.

fn main() -> std::process::ExitCode {
    sluice::main()
}
