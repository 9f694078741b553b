//! The stop signals shared by `serve` and `worker`: SIGINT (Ctrl-C) and SIGTERM (service
//! managers, `kill`). Installed once, early, so a signal that arrives during startup still
//! leads to an orderly stop rather than the default action (die without flushing).

pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(unix)]
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }

    #[cfg(not(unix))]
    pub async fn next(&mut self) -> &'static str {
        // Without a handler there is nothing to wait for; never resolve rather than spin.
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}
