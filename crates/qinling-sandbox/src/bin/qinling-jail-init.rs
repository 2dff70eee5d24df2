//! The jail's init as a program of its own (see `qinling_sandbox::jail::init`): what the
//! integration tests launch, and a small alternative to re-executing the server binary.

fn main() {
    qinling_sandbox::jail::run_init_if_requested();
    eprintln!(
        "qinling-jail-init: started by the qinling jail sandbox only (first argument {})",
        qinling_sandbox::jail::INIT_ARG
    );
    std::process::exit(2);
}
