//! InitProducerId (key 22): a producer id for an idempotent producer, from the engine's
//! durable counter, with epoch 0. A producer that passes its current id and epoch (v3+, after
//! a fatal sequence error) gets the same id with the next epoch, which fences its older
//! epoch, or a fresh id once the epoch would overflow. Transactions are not supported: a
//! transactional id is refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::errors::{engine_error_code, NONE};
use super::Broker;

pub(crate) async fn handle(
    broker: &Broker,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    if request.transactional_id.is_some() {
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return response;
    }
    let (current_id, current_epoch) = (request.producer_id.0, request.producer_epoch);
    if current_id >= 0 && (0..i16::MAX - 1).contains(&current_epoch) {
        response.error_code = NONE;
        response.producer_id = ProducerId(current_id);
        response.producer_epoch = current_epoch + 1;
        return response;
    }
    match broker.producers.allocate_producer_id(&broker.engine).await {
        Ok(id) => {
            response.error_code = NONE;
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(error) => {
            tracing::error!("cannot allocate a producer id: {error}");
            response.error_code = engine_error_code(&error);
        }
    }
    response
}
