//! `CONNECT {json}`: the client's options.
//!
//! Protocol: the client sends CONNECT after the server's INFO; unknown fields are ignored, and
//! async-nats writes unset fields as `null`, which must read as unset. We use `verbose` (`+OK`
//! after each operation; on unless turned off, as nats-server has it), `echo` (false: no messages the connection published itself),
//! `headers` (HMSG may be sent), and `no_responders` (with `headers`: a request nobody
//! receives is answered with a 503 status). `pedantic` is accepted and changes nothing:
//! subjects are always checked. There is no authentication yet, so credentials are ignored.
//! A CONNECT that is not JSON closes the connection with `-ERR 'Invalid Connect Options'`.

use serde::Deserialize;

use super::Connection;
use crate::error::NatsError;

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ConnectOptions {
    verbose: Option<bool>,
    echo: Option<bool>,
    headers: Option<bool>,
    no_responders: Option<bool>,
    name: Option<String>,
    lang: Option<String>,
    version: Option<String>,
}

impl ConnectOptions {
    pub(crate) fn decode(json: &[u8]) -> Result<ConnectOptions, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// Verbose unless the client says otherwise, as in nats-server: a connection that sent
    /// no CONNECT yet, or a CONNECT without `verbose` (someone typing into telnet), gets
    /// `+OK` after each operation. Every client library sends `"verbose":false`.
    pub(crate) fn verbose(&self) -> bool {
        self.verbose.unwrap_or(true)
    }

    pub(crate) fn echo(&self) -> bool {
        self.echo.unwrap_or(true)
    }

    pub(crate) fn headers(&self) -> bool {
        self.headers.unwrap_or(false)
    }

    /// Whether a request nobody receives gets the 503 status (which needs headers).
    pub(crate) fn no_responders(&self) -> bool {
        self.headers() && self.no_responders.unwrap_or(false)
    }
}

pub(crate) fn handle(connection: &mut Connection, json: &[u8]) -> Result<(), NatsError> {
    let options = ConnectOptions::decode(json)
        .map_err(|error| NatsError::InvalidConnect(error.to_string()))?;
    tracing::debug!(
        client_id = connection.client_id,
        name = options.name.as_deref().unwrap_or(""),
        lang = options.lang.as_deref().unwrap_or(""),
        version = options.version.as_deref().unwrap_or(""),
        "NATS client connected"
    );
    connection.mailbox.set_echo(options.echo());
    connection.options = options;
    connection.acknowledge();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_fields_read_as_unset_and_unknown_fields_are_ignored() {
        let options = ConnectOptions::decode(
            br#"{"verbose":false,"pedantic":false,"echo":null,"headers":true,"no_responders":true,
                "name":null,"lang":"rust","version":"0.51.0","protocol":1,"tls_required":false,
                "user":null,"pass":null,"auth_token":null,"jwt":null,"sig":null,"nkey":null}"#,
        )
        .unwrap();
        assert!(!options.verbose());
        assert!(options.echo(), "null echo is the default, on");
        assert!(options.headers());
        assert!(options.no_responders());
        let quiet = ConnectOptions::decode(br#"{"echo":false,"no_responders":true}"#).unwrap();
        assert!(!quiet.echo());
        assert!(!quiet.no_responders(), "no-responders needs headers");
        assert!(ConnectOptions::decode(b"not json").is_err());
    }
}
