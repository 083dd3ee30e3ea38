//! The shutdown signal, tested against a real `SIGTERM` to this test
//! process (its own binary, so no other test shares the handlers).

use std::time::Duration;

use hearth_runtime::{ShutdownSignal, ShutdownSignals, shutdown_signal};

#[tokio::test]
async fn sigterm_and_sigint_resolve_the_shutdown_signal() {
    let test = async {
        let pid = std::process::id().to_string();
        // Installed before the signal is sent, so it cannot be missed.
        let first = shutdown_signal().map_err(|error| error.to_string())?;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|error| error.to_string())?;
        assert!(status.success());
        assert_eq!(first.await, ShutdownSignal::Terminate);

        let mut signals = ShutdownSignals::install().map_err(|error| error.to_string())?;
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .map_err(|error| error.to_string())?;
        assert!(status.success());
        assert_eq!(signals.recv().await, ShutdownSignal::Interrupt);
        Ok::<(), String>(())
    };
    let outcome = tokio::time::timeout(Duration::from_secs(30), test).await;
    assert_eq!(outcome, Ok(Ok(())));
}
