//! The cluster's async queue: a JetStream work-queue stream that every node publishes
//! accepted async executions to (after their row is recorded) and pulls from through one
//! shared durable consumer. A message is acknowledged only once the execution's outcome is
//! recorded (or the row turned out not to be ours to run), and a node running one tells the
//! server it is still at it every few seconds; so a message a lost node held is delivered
//! again after the ack wait, and the conditional claim of the row makes sure what started
//! once never starts twice. Publishing carries the execution id as `Nats-Msg-Id`, so an
//! id offered again within the duplicate window is stored once.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures_util::StreamExt;
use qinling_engine::{AsyncQueue, Delivery};
use qinling_types::ExecutionId;
use tokio::sync::Mutex;

pub(crate) const STREAM: &str = "QINLING_EXECUTIONS";
pub(crate) const SUBJECT: &str = "qinling.executions";
const CONSUMER: &str = "dispatchers";

/// Messages a node pulls ahead of its free slots.
const PREFETCH: usize = 4;

pub struct JetStreamQueue {
    js: jetstream::Context,
    ack_wait: Duration,
    messages: Mutex<Option<consumer::pull::Stream>>,
}

impl JetStreamQueue {
    pub(crate) fn new(js: jetstream::Context, ack_wait: Duration) -> JetStreamQueue {
        JetStreamQueue {
            js,
            ack_wait,
            messages: Mutex::new(None),
        }
    }

    /// The stream and the consumer, created if missing (every node does this; it is
    /// idempotent).
    pub(crate) async fn ensure(&self) -> Result<consumer::PullConsumer, async_nats::Error> {
        let stream = self
            .js
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec![SUBJECT.into()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await?;
        let consumer = stream
            .get_or_create_consumer(
                CONSUMER,
                consumer::pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.ack_wait,
                    max_ack_pending: 100_000,
                    ..Default::default()
                },
            )
            .await?;
        Ok(consumer)
    }

    async fn open(&self) -> Result<consumer::pull::Stream, async_nats::Error> {
        let consumer = self.ensure().await?;
        Ok(consumer
            .stream()
            .max_messages_per_batch(PREFETCH)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await?)
    }
}

#[async_trait::async_trait]
impl AsyncQueue for JetStreamQueue {
    async fn push(&self, id: &ExecutionId) -> Result<(), String> {
        let ack = self
            .js
            .send_publish(
                SUBJECT,
                jetstream::message::PublishMessage::build()
                    .payload(bytes::Bytes::copy_from_slice(id.as_str().as_bytes()))
                    .message_id(id.as_str()),
            )
            .await
            .map_err(|e| format!("publishing to JetStream: {e}"))?;
        // The server's acknowledgement: the message is stored.
        ack.await
            .map_err(|e| format!("JetStream did not store the message: {e}"))?;
        Ok(())
    }

    async fn next(&self) -> Option<Box<dyn Delivery>> {
        let mut messages = self.messages.lock().await;
        loop {
            if messages.is_none() {
                match self.open().await {
                    Ok(stream) => *messages = Some(stream),
                    Err(error) => {
                        tracing::warn!(%error, "cannot pull from the JetStream queue; trying again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            let stream = messages.as_mut().expect("opened above");
            match stream.next().await {
                Some(Ok(message)) => {
                    let Ok(id) = std::str::from_utf8(&message.payload) else {
                        let _ = message.ack().await;
                        continue;
                    };
                    let id = ExecutionId::from(id.to_string());
                    return Some(Box::new(JetStreamDelivery { id, message }));
                }
                Some(Err(error)) => {
                    // A missed heartbeat, a deleted consumer, a reconnect: pull afresh.
                    tracing::debug!(%error, "the JetStream pull ended; pulling again");
                    *messages = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                None => *messages = None,
            }
        }
    }
}

struct JetStreamDelivery {
    id: ExecutionId,
    message: jetstream::Message,
}

#[async_trait::async_trait]
impl Delivery for JetStreamDelivery {
    fn id(&self) -> &ExecutionId {
        &self.id
    }

    async fn working(&self) {
        let _ = self.message.ack_with(AckKind::Progress).await;
    }

    async fn done(self: Box<Self>) {
        if let Err(error) = self.message.ack().await {
            // Delivered again after the ack wait; the claim will find it taken.
            tracing::debug!(%error, execution_id = %self.id, "acknowledging a queued execution failed");
        }
    }

    async fn retry(self: Box<Self>, after: Duration) {
        let _ = self.message.ack_with(AckKind::Nak(Some(after))).await;
    }
}
