//! The AMQP front door's one error type. A channel exception closes one channel
//! (channel.close with the reply code); a connection exception closes the connection
//! (connection.close); the others end the connection without a word.

use crate::codec::FrameError;

/// Reply codes of AMQP 0-9-1 (§1.9 of the spec) that this door sends.
pub mod reply {
    pub const NO_ROUTE: u16 = 312;
    pub const CONNECTION_FORCED: u16 = 320;
    pub const ACCESS_REFUSED: u16 = 403;
    pub const NOT_FOUND: u16 = 404;
    pub const RESOURCE_LOCKED: u16 = 405;
    pub const PRECONDITION_FAILED: u16 = 406;
    pub const FRAME_ERROR: u16 = 501;
    pub const COMMAND_INVALID: u16 = 503;
    pub const CHANNEL_ERROR: u16 = 504;
    pub const UNEXPECTED_FRAME: u16 = 505;
    pub const RESOURCE_ERROR: u16 = 506;
    pub const NOT_ALLOWED: u16 = 530;
    pub const NOT_IMPLEMENTED: u16 = 540;
    pub const INTERNAL_ERROR: u16 = 541;

    /// The code's name as RabbitMQ starts a reply text with it (`NOT_FOUND - …`).
    pub fn name(code: u16) -> &'static str {
        match code {
            NO_ROUTE => "NO_ROUTE",
            CONNECTION_FORCED => "CONNECTION_FORCED",
            ACCESS_REFUSED => "ACCESS_REFUSED",
            NOT_FOUND => "NOT_FOUND",
            RESOURCE_LOCKED => "RESOURCE_LOCKED",
            PRECONDITION_FAILED => "PRECONDITION_FAILED",
            FRAME_ERROR => "FRAME_ERROR",
            COMMAND_INVALID => "COMMAND_INVALID",
            CHANNEL_ERROR => "CHANNEL_ERROR",
            UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
            RESOURCE_ERROR => "RESOURCE_ERROR",
            NOT_ALLOWED => "NOT_ALLOWED",
            NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
            _ => "INTERNAL_ERROR",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// Closes the channel the method came on.
    #[error("channel exception {code}: {text}")]
    Channel {
        code: u16,
        text: String,
        class_id: u16,
        method_id: u16,
    },
    /// Closes the connection.
    #[error("connection exception {code}: {text}")]
    Connection {
        code: u16,
        text: String,
        class_id: u16,
        method_id: u16,
    },
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("no heartbeat or other frame from the client for two heartbeat intervals")]
    MissedHeartbeats,
    #[error("the handshake did not finish in time")]
    HandshakeTimeout,
    #[error("the client closed the connection")]
    ClientClosed,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl AmqpError {
    pub(crate) fn channel(code: u16, text: impl Into<String>, method: (u16, u16)) -> Self {
        AmqpError::Channel {
            code,
            text: text.into(),
            class_id: method.0,
            method_id: method.1,
        }
    }

    pub(crate) fn connection(code: u16, text: impl Into<String>, method: (u16, u16)) -> Self {
        AmqpError::Connection {
            code,
            text: text.into(),
            class_id: method.0,
            method_id: method.1,
        }
    }
}
